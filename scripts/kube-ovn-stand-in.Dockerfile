# A local stand-in for Kube-OVN's image (docker.io/kubeovn/kube-ovn:TAG), which no registry
# here can serve. scripts/container-test.sh builds it from the debootstrapped Debian base, tags
# it with the name the Dockerfile's kube-ovn target uses by default, and builds that target on
# it. It copies the layout the supervisor meets in Kube-OVN's image
# (dist/images/Dockerfile.base and Dockerfile of kube-ovn, v1.15 to master), not its contents:
#
# - OVS/OVN daemons where Kube-OVN's Debian packaging puts them (/usr/sbin/ovsdb-server,
#   /usr/sbin/ovs-vswitchd, /usr/bin/ovn-controller, schemas in /usr/share/{openvswitch,ovn}),
#   from Debian 13 (OVS 3.5, OVN 25.03: Kube-OVN's branches, without its patches);
# - Kube-OVN's file capabilities, `+eip` as it sets them, on the programs this image has:
#   ovsdb-server, ovs-vswitchd, ovs-dpctl, ip, tcpdump, xtables-*-multi, nsenter, sysctl,
#   nice, and modprobe with CAP_SYS_MODULE (outside the pod's five: exec'ing it as 65534
#   fails). ovn-controller carries none, as in Kube-OVN's;
# - /kube-ovn/ holding Kube-OVN's scripts, root by default (no USER), WORKDIR /kube-ovn,
#   ENTRYPOINT dumb-init, Kube-OVN's PATH.
#
# Every Kube-OVN script and dumb-init here is a stand-in that fails loudly (exit 97,
# "kube-ovn stand-in: ... ran"): the test proves that the layered image starts through our
# /kube-ovn/start-ovs.sh and probes through our /kube-ovn/ovs-healthcheck.sh, and that nothing
# it runs reaches a Kube-OVN script or the image's entrypoint.

ARG BASE_IMAGE=docker.io/library/debian:trixie-slim
FROM ${BASE_IMAGE}

LABEL io.github.ovs-ovn-supervisor.stand-in="kube-ovn"
ENV PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d \
 && chmod 0755 /usr/sbin/policy-rc.d \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      openvswitch-switch openvswitch-common ovn-host ovn-central iptables kmod libcap2-bin \
      iproute2 tcpdump procps ipset \
 && setcap CAP_NET_ADMIN+eip "$(readlink -f "$(command -v ip)")" \
 && setcap CAP_NET_ADMIN+eip "$(readlink -f "$(command -v ipset)")" \
 && setcap CAP_NET_ADMIN,CAP_NET_RAW+eip "$(readlink -f "$(command -v xtables-legacy-multi)")" \
 && setcap CAP_NET_ADMIN,CAP_NET_RAW+eip "$(readlink -f "$(command -v xtables-nft-multi)")" \
 && setcap CAP_NET_RAW+eip "$(readlink -f "$(command -v tcpdump)")" \
 && setcap CAP_SYS_ADMIN+eip "$(readlink -f "$(command -v nsenter)")" \
 && setcap CAP_SYS_ADMIN+eip "$(readlink -f "$(command -v sysctl)")" \
 && setcap CAP_SYS_MODULE+eip "$(readlink -f "$(command -v modprobe)")" \
 && setcap CAP_SYS_NICE+eip "$(readlink -f "$(command -v nice)")" \
 && setcap CAP_NET_ADMIN+eip "$(readlink -f "$(command -v ovs-dpctl)")" \
 && setcap CAP_NET_BIND_SERVICE+eip "$(readlink -f "$(command -v ovsdb-server)")" \
 && setcap CAP_NET_ADMIN,CAP_NET_BIND_SERVICE,CAP_SYS_ADMIN+eip "$(readlink -f "$(command -v ovs-vswitchd)")" \
 && rm -f /usr/sbin/policy-rc.d \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
      /etc/openvswitch/conf.db /etc/openvswitch/.conf.db.~lock~ /etc/openvswitch/system-id.conf \
 && mkdir -p /var/run/openvswitch /var/run/ovn /etc/cni/net.d /opt/cni/bin /kube-ovn \
 && for f in /kube-ovn/start-ovs.sh /kube-ovn/ovs-healthcheck.sh /kube-ovn/uninstall.sh \
      /kube-ovn/start-db.sh /kube-ovn/start-cniserver.sh /kube-ovn/start-controller.sh \
      /kube-ovn/ovn-healthcheck.sh /kube-ovn/upgrade-ovs.sh /kube-ovn/kubectl-ko \
      /usr/bin/dumb-init; do \
      printf '#!/bin/sh\necho "kube-ovn stand-in: $0 ran; the real one is not in this image" >&2\nexit 97\n' > "$f"; \
      chmod 0755 "$f"; \
    done

WORKDIR /kube-ovn
ENTRYPOINT ["/usr/bin/dumb-init", "--"]
CMD ["/bin/bash"]
