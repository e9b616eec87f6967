"""Check both connection forms in a real browser and save their screenshots under docs/.

Starts ``airflow api-server`` on a loopback port, in a throw-away Airflow home, with the provider
installed in this virtual environment. It opens the Add Connection dialog in headless Chromium,
picks each connection type, asserts that its labels appear, and saves a PNG per type.

Requirements: Debian's ``chromium`` and ``chromium-driver`` packages (``/usr/bin/chromium`` and
``/usr/bin/chromedriver``) and the ``screenshots`` extra (Selenium). The script does not download
a browser. Run it with ``.venv/bin/python scripts/connection_form_screenshots.py``; it is not part
of the test suite because CI has no browser.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,2400",
)

# Hook name in the connection-type list, then the PNG name stem, the labels of the standard
# section and the labels of the extra section, in form order.
FORMS = {
    "Amazon Redshift for Pigment": (
        "connection-form-pigment-redshift",
        (
            ["Access key ID", "Secret access key"],
            [
                "Region",
                "Redshift cluster name",
                "Database user",
                "Default database name",
                "Redshift Serverless workgroup",
                "Secrets Manager secret ARN",
                "IAM role to assume",
                "Endpoint override",
                "Application access",
            ],
        ),
    ),
    "Pigment": (
        "connection-form-pigment",
        (["Import API key"], ["Base URL", "Request timeout (seconds)", "Key expiry date"]),
    ),
}


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_api_server(home: Path, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """Migrate a fresh metadata database and start the API server, without login, on ``port``."""
    airflow = Path(sys.executable).with_name("airflow")
    environment = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True, env=environment)
    log = log_path.open("wb")
    return subprocess.Popen(
        [str(airflow), "api-server", "-H", "127.0.0.1", "-p", str(port), "-w", "1"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=environment,
    )


def wait_until_healthy(url: str, timeout: float) -> None:
    """Poll the health endpoint until it returns 200, or raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(1)
    raise TimeoutError(f"The API server at {url} did not become healthy within {timeout:.0f} s.")


def save_section(driver: Any, locator: tuple[str, str], hook_name: str, labels: list[str], target: Path) -> None:
    """Assert that the dialog shows every label, then save the dialog as a PNG."""
    time.sleep(1)
    dialog = driver.find_element(*locator)
    text = dialog.text
    missing = [label for label in labels if label not in text]
    if missing:
        raise AssertionError(f"The {hook_name} form lacks the labels {missing}; it shows:\n{text}")
    dialog.screenshot(str(target))
    print(f"{hook_name}: {len(labels)} labels found; screenshot saved to {target}")


def capture_forms(url: str, output_dir: Path, profile_dir: Path) -> None:
    """Open the Add Connection dialog for each type, assert its labels and save a screenshot."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    wait = WebDriverWait(driver, 30)
    try:
        for hook_name, (file_stem, labels) in FORMS.items():
            driver.get(f"{url}/connections")
            add_button = wait.until(
                expected_conditions.element_to_be_clickable((By.XPATH, "//button[normalize-space()='Add Connection']"))
            )
            add_button.click()
            dialog = wait.until(expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, "[role=dialog]")))
            dialog.find_element(By.NAME, "connection_id").send_keys(f"example_{file_stem.removeprefix('connection-form-')}")
            type_input = dialog.find_element(By.CSS_SELECTOR, "input[role=combobox]")
            type_input.send_keys(hook_name)
            option = wait.until(
                expected_conditions.element_to_be_clickable(
                    (By.XPATH, f"//div[contains(@id, 'react-select') and normalize-space()='{hook_name}']")
                )
            )
            option.click()
            standard_labels, extra_labels = labels
            dialog_locator = (By.CSS_SELECTOR, "[role=dialog]")
            wait.until(expected_conditions.text_to_be_present_in_element(dialog_locator, standard_labels[-1]))
            save_section(driver, dialog_locator, hook_name, standard_labels, output_dir / f"{file_stem}-standard.png")

            # The form is an accordion that shows one section at a time.
            dialog.find_element(By.XPATH, ".//button[normalize-space()='Extra Fields']").click()
            wait.until(expected_conditions.text_to_be_present_in_element(dialog_locator, extra_labels[-1]))
            save_section(driver, dialog_locator, hook_name, extra_labels, output_dir / f"{file_stem}-extra.png")
    finally:
        driver.quit()


def main() -> int:
    """Run the browser check and return the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=REPO_ROOT / "docs", help="directory for the PNG files")
    parser.add_argument("--startup-timeout", type=float, default=120.0, help="seconds to wait for the API server")
    arguments = parser.parse_args()
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not Path(binary).exists():
            print(f"error: {binary} not found; install Debian's chromium and chromium-driver packages.", file=sys.stderr)
            return 2

    work_dir = Path(tempfile.mkdtemp(prefix="connection-form-screenshots-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_api_server(work_dir / "airflow-home", port, work_dir / "api-server.log")
    try:
        wait_until_healthy(url, arguments.startup_timeout)
        arguments.output_dir.mkdir(parents=True, exist_ok=True)
        capture_forms(url, arguments.output_dir, work_dir / "chromium-profile")
    except Exception:
        print(f"API server log: {work_dir / 'api-server.log'}", file=sys.stderr)
        raise
    finally:
        server.terminate()
        server.wait(timeout=30)
    shutil.rmtree(work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
