# ovs-ovn-supervisor: the image of Kube-OVN's ovs-ovn DaemonSet pod (images/ovs-ovn.yaml).
#
#   podman build -t ovs-ovn-supervisor .          (or docker build)
#
# Two stages:
#   builder  rust:1-bookworm compiles a static (musl) `ovs-ovn-supervisor`. Static so the
#            binary does not care which libc the runtime has; the runtime is bookworm either way.
#   runtime  debian:bookworm-slim with Debian's Open vSwitch 3.1 and OVN 23.03 packages. No
#            compilers, no shell scripts in the start path: the entrypoint is the binary itself,
#            which starts ovsdb-server, ovs-vswitchd and ovn-controller as its own children
#            (no ovs-ctl, ovn-ctl, start-ovs.sh or dumb-init).
#
# Replacing the builder stage (what scripts/container-test.sh does, offline):
#   podman build --build-context builder=DIR ...
# where DIR holds an executable named `ovs-ovn-supervisor`. A named build context with a
# stage's name takes that stage's place in `COPY --from=builder` (podman >= 4.2 / buildah >= 1.27,
# docker buildx), and the builder stage is then skipped, so rust:1-bookworm is never pulled.
# The substitute must run on bookworm: a musl static binary, or a glibc binary linked on a
# Debian 12 (glibc 2.36) machine, which is what the test script uses because no musl target can
# be installed where it runs. The runtime stage is the same in both cases: the image users get.

ARG RUST_IMAGE=docker.io/library/rust:1-bookworm
ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim

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
RUN cargo build --release --locked --target "${RUST_TARGET}" --bin ovs-ovn-supervisor \
 && install -m 0755 "target/${RUST_TARGET}/release/ovs-ovn-supervisor" /ovs-ovn-supervisor \
 && /ovs-ovn-supervisor --version

# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime

# FILE_CAPS=true gives the daemons the file capabilities Kube-OVN gives them for its non-root
# mode (runAsUser 65534): see "Running as a non-root user" in the README and the commented
# securityContext in images/ovs-ovn.yaml. Off by default: a binary with file capabilities that
# are not all in the container's bounding set cannot be exec'd at all (EPERM), so those
# binaries would fail in a container that does not grant every one of them.
ARG FILE_CAPS=false

# - openvswitch-switch/-common: ovsdb-server, ovs-vswitchd, ovsdb-tool, ovs-ofctl, schemas.
# - ovn-host: ovn-controller. ovn-central adds only ovn-northd and the NB/SB schemas (3.8 MB):
#   `run --sandbox` (the self-contained node the test script runs) serves a local Southbound
#   from /usr/share/ovn/ovn-sb.ovsschema; Kube-OVN's own image carries it too.
# - iptables: the tunnel port rule (legacy and nft backends); kmod: modprobe.
# policy-rc.d keeps the packages' postinst scripts from starting any daemon during the build.
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d \
 && chmod 0755 /usr/sbin/policy-rc.d \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      openvswitch-switch openvswitch-common ovn-host ovn-central iptables kmod \
      $([ "$FILE_CAPS" = true ] && echo libcap2-bin) \
 && if [ "$FILE_CAPS" = true ]; then \
      setcap CAP_NET_BIND_SERVICE+eip "$(readlink -f /usr/sbin/ovsdb-server)" \
   && setcap CAP_NET_ADMIN,CAP_NET_BIND_SERVICE,CAP_SYS_ADMIN,CAP_SYS_NICE+eip "$(readlink -f /usr/sbin/ovs-vswitchd)" \
   && setcap CAP_NET_ADMIN,CAP_NET_BIND_SERVICE,CAP_SYS_ADMIN+eip "$(readlink -f /usr/bin/ovn-controller)" \
   && setcap CAP_NET_ADMIN,CAP_NET_RAW+eip "$(readlink -f /usr/sbin/xtables-legacy-multi)" \
   && setcap CAP_NET_ADMIN,CAP_NET_RAW+eip "$(readlink -f /usr/sbin/xtables-nft-multi)" \
   && setcap CAP_SYS_MODULE+eip "$(readlink -f /usr/bin/kmod)" \
   && DEBIAN_FRONTEND=noninteractive apt-get purge -y --auto-remove libcap2-bin ; \
    fi \
 && rm -f /usr/sbin/policy-rc.d \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
      /etc/openvswitch/conf.db /etc/openvswitch/.conf.db.~lock~ /etc/openvswitch/system-id.conf \
 && mkdir -p /var/run/openvswitch /var/run/ovn /var/log/openvswitch /var/log/ovn \
      /etc/openvswitch /usr/local/var/run \
 && ln -sfn /var/run/openvswitch /usr/local/var/run/openvswitch \
 && if [ "$FILE_CAPS" = true ]; then \
      chown 65534:65534 /var/run/openvswitch /var/run/ovn /var/log/openvswitch /var/log/ovn /etc/openvswitch ; \
    fi

COPY --from=builder /ovs-ovn-supervisor /usr/bin/ovs-ovn-supervisor

# SIGTERM starts the ordered stop (ovn-controller, ovs-vswitchd, ovsdb-server) within the stop
# budget (25 s by default): keep the runtime's stop timeout above it (`podman stop -t 30`,
# terminationGracePeriodSeconds: 30).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/ovs-ovn-supervisor"]
CMD ["run"]
