"""The HTTP gateway: hospitals, pharmacies and the agency call it (contract sections 2 to 5)."""
