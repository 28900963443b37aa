#!/usr/bin/env python3
"""The kernel-datapath loss table from a `scripts/vm-test.sh bench` result file.

    bench-table.py RESULT [DOC]

Prints the markdown section; with DOC (docs/benchmarks.md) it also replaces the section between
the `vm-bench` markers there (or appends it), leaving the rest of DOC as it is: scripts/bench.sh
rewrites the rest and keeps this section.
"""
import re
import sys

BEGIN, END = "<!-- vm-bench:begin -->", "<!-- vm-bench:end -->"

result_path = sys.argv[1]
lines = open(result_path).read().splitlines()
kv = {}
runs = {}
for line in lines:
    if line.startswith("bench "):
        r = dict(p.split("=", 1) for p in line.split()[1:])
        runs.setdefault((r["impl"], r["event"]), []).append(r)
    elif "=" in line:
        for m in re.finditer(r"(\w+)=(\S+)", line):
            kv.setdefault(m.group(1), m.group(2))


def med(v):
    v = sorted(v)
    return v[(len(v) - 1) // 2]


def lost(impl, ev):
    rs = runs.get((impl, ev))
    if not rs:
        return "–"
    v = [int(r["lost"]) for r in rs]
    s = ", ".join(map(str, v))
    return f"**{s}**" if max(v) > 0 else s


def ms(impl, ev, key):
    rs = runs.get((impl, ev))
    if not rs:
        return "–"
    v = [r[key] for r in rs]
    if "never" in v:
        return "never (" + ", ".join(v) + ")"
    v = [int(x) for x in v]
    return f"{med(v) / 1000:.1f} ({min(v) / 1000:.1f}–{max(v) / 1000:.1f})" if len(v) > 1 else f"{v[0] / 1000:.1f}"


def back(impl, ev):
    rs = runs.get((impl, ev))
    if not rs:
        return "–"
    return ", ".join(f"{int(r['back_ms']) / 1000:.1f}" if int(r["back_ms"]) else "–" for r in rs)


def gap(impl, ev):
    rs = runs.get((impl, ev))
    if not rs:
        return "–"
    return ", ".join(f"{int(r['gap_ms']) / 1000:.2f}" for r in rs)


rows = [
    ("rolling update: a second `run` on the same dirs takes over", "takeover",
     "`ovs-ctl restart` (Debian's; saves and restores flows)", "ovs_ctl_restart"),
    ("kill -9 ovsdb-server", "kill9_ovsdb", None, None),
    ("kill -9 ovn-controller", "kill9_controller", None, None),
    ("stop (SIGTERM) then cold start", "stop_start",
     "`ovn-ctl --restart stop_controller`, `ovs-ctl stop`, `ovs-ctl start`, `ovn-ctl start_controller`", "stop_start"),
    ("kill -9 ovs-vswitchd", "kill9_vswitchd",
     "the same kill, then `ovs-ctl start`", "kill9_vswitchd_start"),
]
n_runs = max((len(v) for v in runs.values()), default=0)
table = [
    "| event | ours: lost | ours: outage, s | ours: ready, s | ours: forwarding back at, s | baseline | baseline: lost | baseline: ready, s |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
]
for label, ev, alabel, aev in rows:
    table.append(" | ".join([
        f"| {label}", lost("ours", ev), gap("ours", ev), ms("ours", ev, "ready_ms"), back("ours", ev),
        alabel or "", lost("baseline", aev) if aev else "", (ms("baseline", aev, "ready_ms") + " |") if aev else " |",
    ]))

section = f"""{BEGIN}
## 7. Packets lost on the kernel datapath (VM)

`BENCH_RUNS={n_runs} scripts/vm-test.sh bench` (or `BENCH_VM=1 scripts/bench.sh`): Debian's kernel
{kv.get('kernel', '?')} with the openvswitch module, booted with virtme-ng under QEMU **TCG
emulation** (KVM is unusable here), 2 vCPUs on this 2-core machine: everything inside runs
about 10x slower than on the host, so the times below are TCG times; the packet counts are
what matters. OVS {kv.get('ovs', '?')}, OVN {kv.get('ovn', '?')}. One node (`datapath_type=system`)
with two pods on one logical switch (OVS internal ports in their own network namespaces, with
permanent neighbour entries so that ARP re-resolution does not fall into an event), central
NB + SB + ovn-northd in the same VM; {kv.get('br_int_flows', '?')} OpenFlow rules in br-int.
`ping -i 0.01` pod to pod through each event (TCG sends ~70 a second, not 100): **lost** =
requests never answered, per run; **outage** = the longest time between two replies (~0.02 s
when nothing happens); **ready** = from the event's first action until ours passes `probe
readiness` (after the replaced daemon wrote its new pidfile) or, for the baselines, ovsdb-server
and vswitchd answer and ovn-controller reports `connected`; **forwarding back at** = until
the reply that ended the outage, when it lasted over 0.25 s ("–": none did). Baselines run in the same VM, on the same node, after ours
(ours stopped, then `ovs-ctl start --system-id=random` + `ovn-ctl start_controller`).

{chr(10).join(table)}

How ours loses nothing (the mechanisms, checked in the daemons' logs):

- **A new ovs-vswitchd started without `other_config:flow-restore-wait=true` flushes the
  kernel's flows** (the pods are cut off until ovn-controller has put br-int's table back),
  while the kernel itself keeps forwarding as long as no vswitchd runs at all. So before every
  vswitchd start (cold start, crash restart, takeover) ours sets the flag when the kernel
  datapath still has flows (`ovs-dpctl show`: `flows: N`) or flows were handed over, and clears
  it once br-int's table is complete: non-empty and unchanged for 0.5 s (one aggregate request
  per read), or at the stage deadline whatever it holds (a node whose own networking runs
  through an OVS bridge must not wait forever: OVN reverted its own flow-restore-wait handling
  for that deadlock). Readiness fails until then, naming the flag.
- **A restarted ovn-controller replaced br-int's table before its own was computed** (a few
  packets lost): ours sets `external_ids:ovn-ofctrl-wait-before-clear` (2000 ms on the kernel
  datapath, `OVS_OVN_SUPERVISOR_OFCTRL_WAIT_BEFORE_CLEAR_MS`), which OVN 23.03 to 25.03 honour
  (`ofctrl-wait-before-clear is now 2000 ms`): the old table forwards until the new one is whole.
- Before these changes, on the same bed: kill -9 ovn-controller lost 6, 4, 5 (earlier 10, 7,
  3); stop then cold start 349, 261, 467; kill -9 ovs-vswitchd 291, 329, 318. The price: the
  flag is held until ovn-controller has reconnected (its own backoff) and, after its wait, put
  the table back, so readiness comes later after those events; new flows (a pod resolving a
  neighbour) wait for the flag meanwhile, which is why it is cleared as soon as the table is
  complete (with `BENCH_ARP=1` a re-resolution that fell inside the window waited for it).

Result lines of this run (`{result_path}`):

```
{chr(10).join(l for l in lines if l.startswith('bench '))}
```
{END}"""

print(section)
if len(sys.argv) > 2:
    doc = sys.argv[2]
    text = open(doc).read()
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + section + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    open(doc, "w").write(text)
