"""Re-verification on the hosts between two `socle conform` runs (PSSI LOG-009).

``agent_script.py`` runs on each host from a systemd timer (installed by the ``reverify`` role): it
gathers the conformance facts with the same script as ``socle conform``, compares the host's posture
with the one recorded at its last convergence, and ships a summary signed with the host's PKI key to
the log zone. ``summary.py`` verifies those summaries where the SOC reads them.
"""
