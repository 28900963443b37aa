#!/usr/bin/env python3
"""The zero-loss table from `scripts/vm-test.sh loss` result files (one per topology).

    loss-table.py RESULT... [--doc DOC]

Prints per OVS/OVN version (each result file's), topology and event the min/median/max over the runs of: pings lost pod to pod across
geneve, pod to a pod on the same node, pod to the node's ovn0; TCP connects failed (not
established within 1 s) and slow (over 200 ms); runs in which a node link changed. With --doc it
also replaces the section between the `vm-loss` markers of DOC (or appends it).
"""
import sys

BEGIN, END = "<!-- vm-loss:begin -->", "<!-- vm-loss:end -->"

args = sys.argv[1:]
doc = None
if "--doc" in args:
    i = args.index("--doc")
    doc = args[i + 1]
    del args[i : i + 2]

runs = {}  # (ovs, topo, event) -> [dict]
meta = {}
for path in args:
    ovs = "?"
    for line in open(path).read().splitlines():
        if line.startswith("loss "):
            r = dict(p.split("=", 1) for p in line.split()[1:] if "=" in p)
            runs.setdefault((ovs, r["topo"], r["event"]), []).append(r)
        elif line.startswith(("kernel=", "ovs=", "load=")):
            for p in line.split(" ", 1)[0:1] + line.split()[1:]:
                if "=" in p:
                    k, v = p.split("=", 1)
                    meta.setdefault(k, v if k != "load" else line.split("=", 1)[1])
            if line.startswith("ovs="):
                ovs = " / ".join(p.split("=", 1)[1] for p in line.split())


def mmm(rs, key):
    v = sorted(int(r[key]) for r in rs)
    s = f"{v[0]} / {v[(len(v) - 1) // 2]} / {v[-1]}"
    return f"**{s}**" if v[-1] > 0 else s


LABELS = {
    "takeover": "rolling update: a second `run` takes over",
    "kill9_controller": "kill -9 ovn-controller",
    "kill9_ovsdb": "kill -9 ovsdb-server",
    "kill9_vswitchd": "kill -9 ovs-vswitchd",
    "stop_start": "stop (SIGTERM) then cold start",
}
rows = [
    "| OVS / OVN | topology | event | runs | lost pod→pod (geneve) | lost pod→pod (same node) | lost pod→ovn0 | connects failed (>1 s) | connects slow (>200 ms) | runs with a link changed |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
]
for (ovs, topo, ev), rs in runs.items():
    changed = sum(r["links"] != "same" for r in rs)
    rows.append(
        f"| {ovs} | {topo} | {LABELS.get(ev, ev)} | {len(rs)} | {mmm(rs, 'pod_lost')} | {mmm(rs, 'local_lost')} | "
        f"{mmm(rs, 'ovn0_lost')} | {mmm(rs, 'failed')} | {mmm(rs, 'slow')} | {changed} |"
    )
table = "\n".join(rows)
section = f"""{BEGIN}
### 7.2 Kube-OVN's topology, repeated, one vCPU busy (issue 22)

`BENCH_TOPOLOGY=veth scripts/vm-test.sh loss` and `BENCH_TOPOLOGY=internal ...` (BENCH_RUNS=5 by
default; `VM_OVS=trixie` runs the trixie root's OVS/OVN in the VM): kernel {meta.get('kernel', '?')},
QEMU **TCG** (~10x slower than the host), 2 vCPUs; load: {meta.get('load', '?')}. Two nodes over
geneve wired as kube-ovn-cni wires them (scripts/vm/topo.sh): pods on veth pairs (`veth`) or on
OVS internal ports moved into the pod's namespace (`internal`), each node's `ovn0` on the join
switch, the `ovn-cluster` router between them. Through each event on node1: `ping -i 0.01` from
pod1 to pod2 (node2, across geneve), to pod3 (node1) and to node1's ovn0 (routed), and a new TCP
connection from pod1 to pod2 every 10 ms. Figures are min / median / max over the runs.

{table}
{END}"""
print(section)
if doc:
    text = open(doc).read()
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + section + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    open(doc, "w").write(text)
