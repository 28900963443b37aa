#!/usr/bin/env bash
# br-int's table saved and restored at scale: `ovs-ofctl` text (what a takeover did before
# 2026-12) against our binary OpenFlow 1.5 session (`dataplane::flows::binary`), on two real
# switches (Debian's ovsdb-server and ovs-vswitchd, userspace datapath, no ports) in a temp dir
# and a network namespace of their own. SRC is loaded with FLOWS OVN-like rules (many tables,
# registers, metadata, tcp/ip matches, ct, conjunctions, resubmits) plus NGROUPS select groups
# and NMETERS meters that some rules use; DST starts empty and is cleared after each restore.
# Each run saves SRC both ways and restores into DST both ways, the variants taking turns
# going first; the bench checks the restored table's count every time.
#
#   scripts/bench-flows.sh                 100,000 rules, 5 runs
#   FLOWS=20000 RUNS=3 scripts/bench-flows.sh
set -euo pipefail
cd "$(dirname "$0")/.."
FLOWS=${FLOWS:-100000} RUNS=${RUNS:-5} NGROUPS=${NGROUPS:-64} NMETERS=${NMETERS:-8}
for t in ovsdb-tool ovsdb-server ovs-vswitchd ovs-vsctl ovs-ofctl python3 unshare; do
  command -v "$t" >/dev/null || { echo "bench-flows: $t not found (scripts/install-deps.sh)" >&2; exit 1; }
done
if [ -z "${BENCH_FLOWS_INNER:-}" ]; then
  cargo bench --no-run --locked --bench flows >/dev/null 2>&1 || cargo bench --no-run --locked --bench flows
  exec env BENCH_FLOWS_INNER=1 unshare -n "$0" "$@"
fi

W=$(mktemp -d /tmp/bench-flows.XXXX)
cleanup() {
  for p in "$W"/*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT
DB=unix:$W/db.sock
ovsdb-tool create "$W/conf.db" /usr/share/openvswitch/vswitch.ovsschema
ovsdb-server "$W/conf.db" --remote="punix:$W/db.sock" --pidfile="$W/ovsdb.pid" \
  --unixctl="$W/ovsdb.ctl" --log-file="$W/ovsdb.log" -vconsole:off --detach --no-chdir
ovs-vsctl --db="$DB" --no-wait init
OVS_RUNDIR=$W ovs-vswitchd "$DB" --pidfile="$W/vswitchd.pid" --unixctl="$W/vswitchd.ctl" \
  --log-file="$W/vswitchd.log" -vconsole:off --detach --no-chdir
for b in src dst; do
  ovs-vsctl --db="$DB" --timeout=30 -- add-br $b -- set bridge $b datapath_type=netdev \
    protocols=OpenFlow10,OpenFlow13,OpenFlow15 fail_mode=secure
done
S=unix:$W/src.mgmt
OF=(ovs-ofctl -O OpenFlow15)

python3 - "$W" "$FLOWS" "$NGROUPS" "$NMETERS" <<'EOF'
import sys
w, n, groups, meters = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
with open(f"{w}/meters.txt", "w") as f:
    for m in range(1, meters + 1):
        f.write(f"meter={m},kbps,burst,band=type=drop,rate={1000 * m},burst_size={100 * m}\n")
with open(f"{w}/groups.txt", "w") as f:
    for g in range(1, groups + 1):
        buckets = ",".join(
            f"bucket=bucket_id:{b},weight:100,actions=ct(commit,table=16,zone=NXM_NX_REG13[0..15],"
            f"nat(dst=10.96.{g % 250}.{b + 1}:{8000 + b}))" for b in range(3))
        f.write(f"group_id={g},type=select,selection_method=dp_hash,{buckets}\n")
with open(f"{w}/flows.txt", "w") as f:
    for i in range(n):
        t, k = i % 40, i // 40
        a, b, c = (k >> 16) & 255, (k >> 8) & 255, k & 255
        meta = f"0x{(k % 500) + 1:x}"
        kind = i % 10
        if kind < 4:
            # An ACL: a port group's inport, an address, a destination port.
            f.write(f"table={t},priority={1000 + k % 1000},tcp,reg14=0x{k % 4096 + 1:x},metadata={meta},"
                    f"nw_dst=10.{a}.{b}.{c},tp_dst={k % 60000 + 1} "
                    f"actions=load:0x1->NXM_NX_XXREG0[97],resubmit(,{t + 1})\n")
        elif kind < 6:
            f.write(f"table={t},priority={100 + k % 200},ip,reg15=0x{k % 4096 + 1:x},metadata={meta},"
                    f"nw_src=10.{a}.{b}.{c}/32 actions=conjunction({k + 1},1/2)\n")
        elif kind < 7:
            f.write(f"table={t},priority=110,conj_id={k + 1},ip,metadata={meta} "
                    f"actions=set_field:0x{k % 65535 + 1:x}->reg13,ct(table={(t + 2) % 40},zone=NXM_NX_REG13[0..15])\n")
        elif kind < 8:
            f.write(f"table={t},priority={50 + k % 50},arp,reg14=0x{k % 4096 + 1:x},metadata={meta},"
                    f"arp_tpa=10.{a}.{b}.{c},arp_op=1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],"
                    f"mod_dl_src:0a:58:0a:{a:02x}:{b:02x}:{c:02x},load:0x2->NXM_OF_ARP_OP[],IN_PORT\n")
        elif kind < 9:
            f.write(f"table={t},priority={120 + k % 10},tcp,metadata={meta},nw_dst=10.96.{b}.{c},tp_dst={k % 1000 + 80} "
                    f"actions=group:{k % groups + 1}\n")
        else:
            f.write(f"table={t},priority={90 + k % 10},ip,metadata={meta},dl_dst=0a:58:0a:{a:02x}:{b:02x}:{c:02x} "
                    f"actions=meter:{k % meters + 1},set_field:0x{k % 4096 + 1:x}->reg15,resubmit(,{(t + 3) % 40})\n")
EOF
while read -r m; do "${OF[@]}" add-meter "$S" "$m"; done <"$W/meters.txt"
"${OF[@]}" add-groups "$S" "$W/groups.txt"
"${OF[@]}" --bundle add-flows "$S" "$W/flows.txt"
echo "SRC: $("${OF[@]}" dump-aggregate "$S" | grep -o 'flow_count=[0-9]*'), $NGROUPS groups, $NMETERS meters; OVS $(ovs-vswitchd --version | head -1 | awk '{print $NF}'), $(nproc) CPUs"
FLOWS_SRC=$W/src.mgmt FLOWS_DST=$W/dst.mgmt FLOWS_DIR=$W FLOWS_METERS=$W/meters.txt RUNS=$RUNS \
  cargo bench --locked --bench flows 2>/dev/null
