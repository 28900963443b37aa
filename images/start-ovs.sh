#!/bin/sh
exec /usr/bin/ovs-ovn-supervisor run "$@"
