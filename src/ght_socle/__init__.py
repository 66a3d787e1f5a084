"""ght-socle: the shared technical and security base of a GHT, as code.

Data flows one way: stack config -> Pulumi program -> stack outputs -> inventory -> roles ->
conformance -> report, and the PSSI catalog (``policies/catalog``) feeds the policies, the role
tags and the conformance test markers.
"""

__version__ = "0.1.0"
