"""What runs, exercises and measures onestop, apart from the services themselves.

``serve`` supervises Redis, adjudicators and gateways on one machine; ``redis_server`` starts
real Redis servers and local Redis Clusters; ``demo`` is the walk-through of a demo region;
``bench`` and ``soak`` measure and stress the real stack; ``synthetic`` and ``dataset`` make
and load generated regions. The services (``adjudicator``, ``gateway``) never import this
package (a test checks it).
"""
