"""TLS on the control plane, in network namespaces: a head started with
--tls-cert/--tls-key, an agent that joins with --tls-ca, status/nodes through
TLS from a worker; a plain agent against the TLS head is refused with a message
that says TLS is required, and the head logs the refusal. The certificate is
made for this run with the openssl command."""

import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster_harness as h  # noqa: E402
import netns  # noqa: E402
from cluster_harness import check  # noqa: E402


def main():
    netns.skip_unless_able()
    if shutil.which("openssl") is None:
        print("SKIP: needs the openssl command to make a test certificate")
        sys.exit(netns.SKIP)
    with h.Cluster(num_agents=2) as c:
        cert, key = os.path.join(c.root, "head.pem"), os.path.join(c.root, "head.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "1", "-subj", "/CN=llmctl-tls-test"], check=True, capture_output=True)
        r = c.start_head(["--tls-cert", cert, "--tls-key", key])
        line = [l for l in r.stdout.splitlines() if "llmctl start --address" in l]
        check(len(line) == 1 and f"--tls-ca {cert}" in line[0], "the join command names the certificate to trust")
        c.token = line[0].split("--token")[1].split()[0]
        a1, a2 = c.agents

        # An agent that trusts the head's certificate joins over TLS.
        c.llmctl(a1, ["start", "--address", f"{c.head.address}:{h.PORT}", "--token", c.token, "--tls-ca", cert,
                      "--node-ip-address", a1.address], check_rc=0)
        nodes = c.nodes_json(a1)
        check(len(nodes) == 2 and all(n["state"] == "Active" for n in nodes),
              "head and TLS agent Active; `nodes` on the worker goes through TLS")
        check(c.status_json(c.head)["resources"]["total"]["CPU"] > 0, "status on the head node goes through TLS")

        # A plain agent (no --tls-ca) is refused, and told why.
        r = c.llmctl(a2, ["start", "--address", f"{c.head.address}:{h.PORT}", "--token", c.token,
                          "--node-ip-address", a2.address])
        print(r.stderr.strip())
        check(r.returncode != 0, "a plain agent against the TLS head fails to join")
        agent_log = c.log_text(a2, "agent.log")
        check("requires TLS" in agent_log or "requires TLS" in r.stderr,
              "the plain agent is told the head requires TLS")
        r = c.llmctl(a2, ["nodes", "--address", f"{c.head.address}:{h.PORT}", "--token", c.token])
        check(r.returncode != 0 and "requires TLS" in r.stderr and "--tls-ca" in r.stderr,
              f"a plain client gets a clear message: {r.stderr.strip()}")
        r = c.llmctl(a2, ["nodes", "--json", "--address", f"{c.head.address}:{h.PORT}", "--token", c.token,
                          "--tls-ca", cert], check_rc=0)
        check(len(json.loads(r.stdout)) == 2, "the same client with --tls-ca is let in")
        refusals = [l for l in c.log_text(c.head, "head.log").splitlines() if "did not start TLS" in l]
        check(any(a2.address in l for l in refusals), "the head logs the plain client's refusal with its address")
        check(len(c.nodes_json(a1)) == 2, "the refused agent never joined")
    print("PASS")


if __name__ == "__main__":
    main()
