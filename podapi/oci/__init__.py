"""The I/O edge: processes, runc/crun, conmon, netavark, cgroups, host facts."""
