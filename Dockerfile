# ovs-ovn-supervisor: the image of Kube-OVN's ovs-ovn DaemonSet pod. Two images, one Dockerfile:
#
#   podman build --target kube-ovn -t REGISTRY/kube-ovn:v1.16.2-ovs-ovn-supervisor .
#       Kube-OVN's own image with the supervisor layered on: the supported way to adopt it in a
#       Kube-OVN cluster (README: "Adopting it in a Kube-OVN cluster"). Its OVS/OVN are exactly
#       the cluster's (Kube-OVN's patched, renamed builds, matching its ovn-northd).
#       --build-arg KUBE_OVN_IMAGE=docker.io/kubeovn/kube-ovn:vX.Y.Z picks the version.
#   podman build -t ovs-ovn-supervisor .           (or docker buildx build)
#       The standalone Debian image (the last stage, `runtime`): Debian's stock OVS/OVN.
#
# Stages:
#   builder  rust:1-bookworm compiles static (musl) `ovs-ovn-supervisor` and `ovs-ovn-ip` (the
#            runtime's `ip` wrapper, src/bin/ovs-ovn-ip.rs). Static so the binaries do not care
#            which libc the image has (Kube-OVN's is Ubuntu 24.04).
#   kube-ovn Kube-OVN's image (${KUBE_OVN_IMAGE}) plus the supervisor, nothing else: below.
#   runtime  debian:trixie-slim with Debian 13's Open vSwitch 3.5 and OVN 25.03 packages, the
#            branches Kube-OVN v1.15+ builds (its OVS branch-3.5, OVN branch-25.03, patched, so
#            never the same build: see the README's version caveat). Debian 12's
#            OVS 3.1 / OVN 23.03 are still supported and tested:
#              --build-arg BASE_IMAGE=docker.io/library/debian:bookworm-slim
#            (scripts/container-test.sh: CONTAINER_TEST_BASE=bookworm). No
#            compilers, no shell scripts in the start path: the entrypoint is the binary itself,
#            which starts ovsdb-server, ovs-vswitchd and ovn-controller as its own children
#            (no ovs-ctl, ovn-ctl, start-ovs.sh or dumb-init). Runs as uid 65534 with file
#            capabilities (below); /kube-ovn/ovs-healthcheck.sh keeps Kube-OVN's probe path and
#            /kube-ovn/start-ovs.sh its start command.
# Building one target builds only the stages it uses (podman/buildah, docker buildx); docker's
# legacy builder would build (and pull) all three.
#
# Replacing the builder stage (what scripts/container-test.sh does, offline):
#   podman build --build-context builder=DIR ...
# where DIR holds executables named `ovs-ovn-supervisor` and `ovs-ovn-ip` (the kube-ovn target
# needs only the first). A named build context with a
# stage's name takes that stage's place in `COPY --from=builder` (podman >= 4.2 /
# buildah >= 1.27, docker buildx), and the builder stage is then skipped, so rust:1-bookworm is never pulled.
# The substitute must run on the image's libc: a musl static binary, or a glibc binary linked
# on a Debian 12 (glibc 2.36) machine, which runs on bookworm and on trixie (glibc 2.41; glibc is
# backward compatible) and is what the test script uses because no musl target can be installed
# where it runs. The other stages are the same in both cases: the images users get.

ARG RUST_IMAGE=docker.io/library/rust:1-bookworm
ARG BASE_IMAGE=docker.io/library/debian:trixie-slim
# The Kube-OVN release whose image the kube-ovn target extends (README: which tags fit).
ARG KUBE_OVN_IMAGE=docker.io/kubeovn/kube-ovn:v1.16.2

# ---------------------------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS builder
ARG RUST_TARGET=x86_64-unknown-linux-musl
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add "${RUST_TARGET}"
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY benches benches
COPY src src
RUN cargo build --release --locked --target "${RUST_TARGET}" \
      --bin ovs-ovn-supervisor --bin ovs-ovn-ip \
 && install -m 0755 "target/${RUST_TARGET}/release/ovs-ovn-supervisor" /ovs-ovn-supervisor \
 && install -m 0755 "target/${RUST_TARGET}/release/ovs-ovn-ip" /ovs-ovn-ip \
 && /ovs-ovn-supervisor --version

# ---------------------------------------------------------------------------------------------
FROM ${KUBE_OVN_IMAGE} AS kube-ovn
# Kube-OVN's image exactly as its release ships it (Ubuntu 24.04, its OVS/OVN builds with their
# file capabilities, /kube-ovn/*.sh, root by default, ENTRYPOINT dumb-init), plus three files
# and nothing else: scripts/container-test.sh diffs this image against its base and finds these
# three paths only, with the same config (user, entrypoint, cmd, env, workdir).
# - /kube-ovn/start-ovs.sh: both Kube-OVN charts (and install.sh) run
#   `command: ["/kube-ovn/start-ovs.sh"]`; it becomes a two-line exec of the supervisor, so the
#   charts' DaemonSet runs it unchanged (same user, capabilities, env, volumes).
# - /kube-ovn/ovs-healthcheck.sh: the charts' liveness and readiness command
#   (`bash /kube-ovn/ovs-healthcheck.sh`); the wrapper asks the running supervisor.
# - /usr/bin/ovs-ovn-supervisor with cap_sys_nice (to renice the daemons, as Kube-OVN's `nice`
#   does for ovs-ctl). Kube-OVN's image runs as root by default, so the RUN below can setcap;
#   the pod runs it as 65534 with the five capabilities, as it ran start-ovs.sh.
# - /kube-ovn/uninstall.sh: Kube-OVN's cleanup.sh runs `bash /kube-ovn/uninstall.sh` in this
#   pod; its own script's `ovs-ctl stop` would be undone by our restarts, so it becomes an exec
#   of `ovs-ovn-supervisor uninstall` (ipset, iptables and ovs-dpctl keep Kube-OVN's
#   capabilities).
# Every other program (ovsdb-server, ovs-vswitchd, ovn-controller, ip, tcpdump, iptables,
# modprobe...) keeps Kube-OVN's own file capabilities, including ovn-controller's none.
COPY --chmod=0755 images/start-ovs.sh /kube-ovn/start-ovs.sh
COPY --chmod=0755 images/ovs-healthcheck.sh /kube-ovn/ovs-healthcheck.sh
COPY --chmod=0755 images/uninstall.sh /kube-ovn/uninstall.sh
COPY --from=builder /ovs-ovn-supervisor /usr/bin/ovs-ovn-supervisor
RUN setcap cap_sys_nice+ep /usr/bin/ovs-ovn-supervisor

# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime

# Non-root by default, exactly as Kube-OVN runs this pod: uid 65534 (nobody), not privileged,
# capabilities NET_ADMIN, NET_BIND_SERVICE, NET_RAW, SYS_NICE and SYS_ADMIN (capabilities.add,
# so only in the bounding set: a non-root process has none of them effective). Every program
# that needs a capability therefore carries it as a file capability, each a subset of those
# five. `+ep`: the kernel grants file-permitted & bounding, and refuses the exec (EPERM, root
# included) when a capability of an `e` file is outside the bounding set, so nothing here may
# carry one outside the five (Kube-OVN's modprobe carries SYS_MODULE; ours carries nothing and
# fails at the syscall instead, which the supervisor reports as a warning: a privileged init
# container loads the modules). No `i`, but on `ip`: capabilities come from the file alone,
# whatever the runtime leaves in the inheritable set. File capabilities need no_new_privs off
# (allowPrivilegeEscalation not false): with it the exec succeeds but grants nothing.
#
#   ovsdb-server            NET_BIND_SERVICE                         (as Kube-OVN)
#   ovs-vswitchd            NET_ADMIN, NET_BIND_SERVICE, SYS_ADMIN   (as Kube-OVN; on trixie
#                           /usr/sbin/ovs-vswitchd links to /usr/lib/openvswitch-switch/, so
#                           the capability goes on the link's target, readlink -f)
#   ovn-controller          NET_ADMIN (rtnetlink: OVN >= 25.03 dynamic routing)
#   ipset                   NET_ADMIN (as Kube-OVN: `uninstall` destroys Kube-OVN's sets)
#   ovs-dpctl               NET_ADMIN (as Kube-OVN: opening the kernel datapath over netlink;
#                           the supervisor counts its flows before a vswitchd start)
#   xtables-*-multi         NET_ADMIN, NET_RAW                       (as Kube-OVN)
#   ovs-ovn-supervisor      SYS_NICE (renices the daemons to -10, which Kube-OVN did with
#                           its SYS_NICE `nice`; set below, after the binary is copied in)
#   tcpdump                 NET_RAW                                  (as Kube-OVN: kubectl ko
#                           tcpdump runs it in this pod for a host-network pod)
#   ip (iproute2)           NET_ADMIN, SYS_ADMIN, in two files. kubectl-ko runs `ip link`,
#                           `ip maddr add` and `ip netns exec NS ip maddr add` here (ko perf).
#                           iproute2 drops all its capabilities when run by a non-root user
#                           unless NET_ADMIN is in its inheritable set, which no Kubernetes exec
#                           gives (so Kube-OVN's `cap_net_admin+eip` ip cannot add a multicast
#                           address as 65534). /usr/sbin/ip (first in PATH; Debian's link is
#                           diverted) is ovs-ovn-ip (src/bin/ovs-ovn-ip.rs), `=p`: it copies the
#                           two from its permitted into its inheritable set and execs the real
#                           /usr/bin/ip, `=ei`, which then holds and keeps them. SYS_ADMIN is
#                           what `ip netns exec` needs (setns, its own mount namespace); Kube-OVN
#                           gives ip NET_ADMIN only. Neither file has a permitted capability
#                           with `e`, so neither exec can fail on the bounding set; a program
#                           `ip netns exec` runs gets nothing (no ambient capabilities).
#
# Root still works with the same five capabilities added (runAsUser: 0): the directories below
# are owned by 65534, which root writes through CAP_DAC_OVERRIDE, in every runtime's defaults.
# Every run needs the five in the bounding set, root or not (see the README).
#
# - openvswitch-switch/-common: ovsdb-server, ovs-vswitchd, ovsdb-tool, ovs-ofctl, schemas.
# - ovn-host: ovn-controller. ovn-central adds only ovn-northd and the NB/SB schemas (3.8 MB):
#   `run --sandbox` (the self-contained node the test script runs) serves a local Southbound
#   from /usr/share/ovn/ovn-sb.ovsschema; Kube-OVN's own image carries it too.
# - iptables: the tunnel port rule (legacy and nft backends); kmod: modprobe (the init
#   container's, as root); libcap2-bin: setcap/getcap (70 kB, kept: `getcap -r /usr` shows
#   what every binary carries).
# - iproute2, tcpdump: what kubectl-ko execs in this pod (and `ip link show` is how the
#   supervisor tells a Kube-OVN underlay bridge's link is gone, as start-ovs.sh did).
# policy-rc.d keeps the packages' postinst scripts from starting any daemon during the build.
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d \
 && chmod 0755 /usr/sbin/policy-rc.d \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      openvswitch-switch openvswitch-common ovn-host ovn-central iptables kmod libcap2-bin \
      iproute2 tcpdump ipset \
 && setcap cap_net_bind_service+ep "$(readlink -f /usr/sbin/ovsdb-server)" \
 && setcap cap_net_admin,cap_net_bind_service,cap_sys_admin+ep "$(readlink -f /usr/sbin/ovs-vswitchd)" \
 && setcap cap_net_admin+ep "$(readlink -f /usr/bin/ovn-controller)" \
 && setcap cap_net_admin+ep "$(readlink -f /usr/bin/ovs-dpctl)" \
 && setcap cap_net_admin,cap_net_raw+ep "$(readlink -f /usr/sbin/xtables-legacy-multi)" \
 && setcap cap_net_admin,cap_net_raw+ep "$(readlink -f /usr/sbin/xtables-nft-multi)" \
 && setcap cap_net_raw+ep "$(readlink -f /usr/bin/tcpdump)" \
 && setcap cap_net_admin+ep "$(readlink -f /usr/sbin/ipset)" \
 && setcap cap_net_admin,cap_sys_admin+ei /usr/bin/ip \
 && for link in /usr/sbin/ip /sbin/ip; do \
      ! dpkg -S "$link" >/dev/null 2>&1 \
        || dpkg-divert --quiet --local --rename --divert "$link.iproute2" "$link"; done \
 && test ! -e /usr/sbin/ip \
 && rm -f /usr/sbin/policy-rc.d \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
      /etc/openvswitch/conf.db /etc/openvswitch/.conf.db.~lock~ /etc/openvswitch/system-id.conf \
 && mkdir -p /var/run/openvswitch /var/run/ovn /var/log/openvswitch /var/log/ovn \
      /etc/openvswitch /etc/ovn /usr/local/var/run /kube-ovn \
 && ln -sfn /var/run/openvswitch /usr/local/var/run/openvswitch \
 && chown 65534:65534 /var/run/openvswitch /var/run/ovn /var/log/openvswitch /var/log/ovn \
      /etc/openvswitch /etc/ovn /usr/local/var/run

# Kube-OVN's probe path and start command, for a DaemonSet that still runs `bash
# /kube-ovn/ovs-healthcheck.sh` and `/kube-ovn/start-ovs.sh` (a Kube-OVN chart given this image),
# and the uninstall script Kube-OVN's cleanup.sh runs in this pod.
COPY --chmod=0755 images/ovs-healthcheck.sh /kube-ovn/ovs-healthcheck.sh
COPY --chmod=0755 images/start-ovs.sh /kube-ovn/start-ovs.sh
COPY --chmod=0755 images/uninstall.sh /kube-ovn/uninstall.sh

# kubectl-ko's `ip` as 65534 (above): the wrapper where Debian's /usr/sbin/ip link was.
COPY --from=builder /ovs-ovn-ip /usr/sbin/ip
RUN setcap cap_net_admin,cap_sys_admin+p /usr/sbin/ip

# The binary, then its file capability. Not one `RUN --mount=type=bind,from=builder` layer,
# although that would store the binary once: a RUN layer is cached by its command, not by what
# is mounted into it, so a rebuilt binary would silently leave the old one in the image. COPY is
# cached by content, and the RUN after it follows.
COPY --from=builder /ovs-ovn-supervisor /usr/bin/ovs-ovn-supervisor
RUN setcap cap_sys_nice+ep /usr/bin/ovs-ovn-supervisor

STOPSIGNAL SIGTERM
# nobody:nogroup by default, as Kube-OVN runs it (runAsUser: 65534); `--user 0` / runAsUser: 0
# for root, with the same capabilities added.
USER 65534:65534
ENTRYPOINT ["/usr/bin/ovs-ovn-supervisor"]
CMD ["run"]
