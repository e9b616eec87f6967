-- One row per line item of the orders placed in [:interval_start, :interval_end).
SELECT
    l.l_orderkey                            AS order_key,
    l.l_linenumber                          AS line_number,
    o.o_orderdate                           AS order_date,
    c.c_name                                AS customer,
    n.n_name                                AS nation,
    p.p_name                                AS part,
    l.l_quantity                            AS quantity,
    l.l_extendedprice                       AS price,
    l.l_discount                            AS discount,
    l.l_extendedprice * (1 - l.l_discount)  AS net_revenue
FROM tpch.lineitem AS l
JOIN tpch.orders AS o ON o.o_orderkey = l.l_orderkey
JOIN tpch.customer AS c ON c.c_custkey = o.o_custkey
JOIN tpch.nation AS n ON n.n_nationkey = c.c_nationkey
JOIN tpch.part AS p ON p.p_partkey = l.l_partkey
WHERE o.o_orderdate >= CAST(:interval_start AS DATE)
  AND o.o_orderdate < CAST(:interval_end AS DATE)
ORDER BY l.l_orderkey, l.l_linenumber
