"""Stage 2 — cost of the MobileNet family, pure Python: `table.cost_table` is the entry point.

rows.py   the shared row and published-figure types
v1.py     MobileNet V1: the paper's Tables 1, 2 and the standard-conv comparison
v2.py     MobileNet V2 and the inverted residual block V3 reuses
v3.py     MobileNet V3-Small and V3-Large
v4.py     MobileNet V4 Conv-S and Conv-M (the block tables pipeline/archs/v4.py builds from)
table.py  checks the inputs and dispatches through the Arch registry (pipeline/archs/)
"""
