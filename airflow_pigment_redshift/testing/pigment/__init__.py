"""Modules of the local Pigment import API emulator; import it from ``pigment_emulator``."""
