"""`llmctl logs` across a cluster of network-namespace hosts: a supervised
child on one node writes a Gloo error to stderr and `logs --grep Gloo`, run on
another node, finds it with the right node and component; the filters; --follow
sees a line written after it started; a stopped node is reported by name."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster_harness as h  # noqa: E402
import netns  # noqa: E402
from cluster_harness import check, fail, wait_for  # noqa: E402




def logs(c, host, args, rc=0):
    r = c.llmctl(host, ["logs"] + list(args), check_rc=rc)
    return [json.loads(l) for l in r.stdout.splitlines()] if "--json" in args else r.stdout, r.stderr


def main():
    netns.skip_unless_able()
    with h.Cluster(num_agents=2) as c:
        h.start_cluster(c)
        lf002, lf003 = c.agents
        for a in c.agents:
            c.wait_state(a.address, "Active", 10)
        # The word is assembled at run time so the agent's "starting: <command>" line does not match.
        script = 'w=Gl; echo "[${w}oo] Connection refused: 10.9.9.9:30007" >&2; echo "rank up"; exec sleep 60'
        r = c.llmctl(c.head, ["submit", "--name", "gloo", "--bundles", json.dumps([{"node:lf003": 1}]), "--",
                              "sh", "-c", script], check_rc=0)
        group = json.loads(r.stdout)["group_id"]

        # Found from the head, with the node and component of the child.
        recs = wait_for(lambda: logs(c, c.head, ["--grep", "Gloo", "--json"])[0], 10, "the Gloo line")
        check(len(recs) == 1, f"one Gloo line in the cluster: {recs}")
        check(recs[0]["node"] == "lf003", f"node of the Gloo line: {recs[0]}")
        check(recs[0]["component"] == f"job/{group}-0", f"component of the Gloo line: {recs[0]}")
        check(recs[0]["file"].endswith(".err"), f"the line came from stderr: {recs[0]}")
        # The same from a worker, and the text form prefixes node and component.
        out, _ = logs(c, lf002, ["--grep", "Gloo"])
        check(out.startswith(f"lf003 job/{group}-0 | "), f"text form: {out!r}")

        # Filters: --node, --component, --level, --since/--until.
        recs, _ = logs(c, c.head, ["--grep", "Gloo", "--node", "lf002", "--json"])
        check(recs == [], f"--node lf002 has no Gloo line: {recs}")
        recs, _ = logs(c, c.head, ["--component", "agent", "--json"])
        check(recs and {r["component"] for r in recs} == {"agent"}, f"--component agent: {recs}")
        check({r["node"] for r in recs} == {"lf001", "lf002", "lf003"}, f"every node's agent answered: {recs}")
        recs, _ = logs(c, c.head, ["--component", "head", "--json"])
        check(recs and {r["node"] for r in recs} == {"lf001"}, "the head's log is on lf001")
        recs, _ = logs(c, c.head, ["--level", "warn", "--json"])
        check(all(r["level"] in ("warn", "error", "critical") for r in recs), "--level warn")
        recs, _ = logs(c, c.head, ["--grep", "Gloo", "--since", "5m", "--json"])
        check(len(recs) == 1, "--since 5m keeps the fresh line")
        recs, _ = logs(c, c.head, ["--grep", "Gloo", "--until", "1h", "--json"])
        check(recs == [], "--until 1h (an hour ago) drops it")

        # --follow sees a line written after it started.
        p = c.head.spawn([h.LLMCTL, "--state-dir", c.state_dir(c.head), "logs", "--grep", "NCCL WARN", "--follow",
                          "--json"], env={"LLMCTL_ADDRESS": "", "LLMCTL_TOKEN": ""})
        try:
            time.sleep(1.5)
            c.llmctl(c.head, ["submit", "--name", "nccl", "--bundles", json.dumps([{"node:lf002": 1}]), "--",
                              "sh", "-c", 'w=NC; echo "${w}CL WARN NET/Socket : peer closed"; exec sleep 60'], check_rc=0)
            os.set_blocking(p.stdout.fileno(), False)
            buf = ""
            deadline = time.time() + 15
            while time.time() < deadline and "\n" not in buf:
                try:
                    buf += os.read(p.stdout.fileno(), 65536).decode()
                except BlockingIOError:
                    pass
                time.sleep(0.1)
            check("\n" in buf, f"--follow printed the new line: {buf!r}")
            if "\n" in buf:
                rec = json.loads(buf.split("\n")[0])
                check(rec["node"] == "lf002" and rec["component"].startswith("job/"), f"followed line: {rec}")
        finally:
            p.kill()
            p.wait(timeout=10)

        # A stopped node is reported by name, and the exit code says the answer is partial.
        c.llmctl(lf003, ["stop"], check_rc=0)
        c.wait_state(lf003.address, "Dead", 10)
        out, err = logs(c, c.head, ["--grep", "Gloo"], rc=1)
        check("lf003" in err and "Dead" in err, f"the stopped node is named: {err!r}")
    print("logs_cluster: all checks passed")


if __name__ == "__main__":
    main()
