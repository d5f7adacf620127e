// Package faults holds the fault tests of the boot chain: a storm of
// simulated PXE clients (package bootsim) against the real `git onesis
// serve` in network namespaces, under packet loss and delay, a killed and
// restarted server, and refs moving mid-transfer. It has no code of its
// own; see faults_test.go and docs/faults.md.
package faults
