// Package multisite holds the test of a site with more than one boot
// server: a central image repository, three boot servers that are git
// clones of it kept current by `git onesis sync`, each running the real
// `git onesis serve` for its own subnet behind a DHCP relay (dnsmasq
// --dhcp-relay), and simulated nodes (package bootsim) on every subnet.
// It has no code of its own; see multisite_test.go and docs/multiserver.md.
package multisite
