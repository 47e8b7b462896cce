"""The national interface (``POST /fsi/api/{infno}``).

onestop in the national platform's dialect, for HIS and pharmacy software that speaks it
(docs/national.md, docs/adr/0009).
"""
