"""The national platform's interface (定点医药机构接口) translated to onestop's own terms.

Pure translation: code tables, exact yuan/fen conversion, the envelope and the transactions'
fields. Nothing here talks to Redis, gRPC or HTTP; the gateway's ``gateway.national`` package
serves it (docs/national.md, docs/adr/0009).
"""
