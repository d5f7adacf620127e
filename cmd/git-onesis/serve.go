package main

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/boot/integrity"
	"github.com/onesis/git-onesis/boot/serve"
)

func init() { register(serveCmd) }

var serveCmd = &cli.Command{
	Name:      "serve",
	Usage:     "boot the inventory's nodes from this repository: DHCP, TFTP, HTTP, portmap and an NFS root in one process",
	UsageText: "git onesis serve --iface IFACE [--addr IP] [--ref REV] [--no-dhcp] [--no-tftp] [--no-http] [--no-nfs] [--no-portmap] [options]",
	Description: "Each node of 'git onesis node list' boots, by MAC, the commit its ref names, else\n" +
		"--ref, else the branch checked out here (re-read at every boot, so a new commit\n" +
		"or checkout needs no restart). The commit is fixed when the node fetches its\n" +
		"iPXE script and recorded in refs/onesis/booted/NODE; the node keeps it until\n" +
		"it reboots. Each service can be switched off to keep a site's own dnsmasq or\n" +
		"knfsd. Logs are structured (slog) on stderr; SIGTERM or SIGINT shut down\n" +
		"cleanly. See docs/serve.md.",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "iface", Usage: "provisioning `INTERFACE` (DHCP and TFTP bind to it)"},
		&cli.StringFlag{Name: "addr", Usage: "server `IP` nodes reach (default: the interface's first IPv4 address)"},
		&cli.StringFlag{Name: "ref", Usage: "boot `REV` instead of the checked-out branch (node refs still win)"},
		&cli.BoolFlag{Name: "require-signature", Usage: "boot only commits whose signature git verifies (as onesis.serve.requireSignature=true)"},
		&cli.DurationFlag{Name: "retry-after", Value: 30 * time.Second, Usage: "a node refused by the signature policy asks again after `DURATION`"},
		&cli.IntFlag{Name: "http-port", Value: 8080, Usage: "HTTP `PORT`"},
		&cli.IntFlag{Name: "tftp-port", Value: 69, Usage: "TFTP `PORT`"},
		&cli.IntFlag{Name: "nfs-port", Value: 2049, Usage: "NFS and MOUNT `PORT`"},
		&cli.IntFlag{Name: "portmap-port", Value: 111, Usage: "portmapper `PORT`"},
		&cli.BoolFlag{Name: "no-dhcp", Usage: "do not run the DHCP server"},
		&cli.BoolFlag{Name: "proxy-dhcp", Usage: "run DHCP as a PXE proxy beside the site's DHCP server, which gives the addresses: only boot firmware is answered, without an address"},
		&cli.BoolFlag{Name: "no-tftp", Usage: "do not run the TFTP server"},
		&cli.BoolFlag{Name: "no-http", Usage: "do not run the HTTP server"},
		&cli.BoolFlag{Name: "no-nfs", Usage: "do not run the NFS server"},
		&cli.BoolFlag{Name: "no-prune", Usage: "keep NFS blob-store files that no booted or current commit uses (default: remove them at start and every --prune-every)"},
		&cli.IntFlag{Name: "tftp-max", Value: 1024, Usage: "at most `N` TFTP transfers at once; more are refused (\"server busy\") until one ends"},
		&cli.DurationFlag{Name: "prune-every", Value: 24 * time.Hour, Usage: "prune the NFS blob store every `DURATION` while serving"},
		&cli.BoolFlag{Name: "no-portmap", Usage: "do not run the portmapper"},
		&cli.BoolFlag{Name: "no-ra", Usage: "do not answer IPv6 router solicitations (iPXE then waits ~16 s)"},
		&cli.BoolFlag{Name: "discover", Usage: "record unknown MACs for 'git onesis node discovered'"},
		&cli.BoolFlag{Name: "pxelinux", Usage: "give BIOS clients pxelinux.0 instead of undionly.kpxe"},
		&cli.StringFlag{Name: "ipxe-dir", Value: "/usr/lib/ipxe", Usage: "`DIR` holding undionly.kpxe, ipxe.efi and snponly.efi (and arm64-efi/snponly.efi for arm64)"},
		&cli.StringSliceFlag{Name: "boot-file", Usage: "boot file `FIRMWARE=NAME` in --ipxe-dir (or URL for the -http kinds; empty: do not answer); FIRMWARE is one of " + strings.Join(serve.BootFileFirmwares, ", ") + " (repeatable)"},
		stateDirFlag, initFlag, moduleFlag,
		&cli.StringFlag{Name: "console", Usage: "console= kernel argument (default ttyS0; 'none' to omit)"},
		&cli.StringFlag{Name: "nfs-options", Usage: "`OPTIONS` appended to nfsroot= (default port=P,mountport=P,vers=3,proto=tcp,nolock)"},
		&cli.StringFlag{Name: "nfs-export-dir", Usage: "nodes mount `DIR`/c/<commit> from a kernel NFS server fed by 'git onesis exports' (needs --no-nfs)"},
		&cli.StringFlag{Name: "nfs-server", Usage: "NFS server `IP` put in nfsroot= (default: --addr)"},
		&cli.StringFlag{Name: "secrets-dir", Usage: "serve `DIR`/NODE/ at /n/NODE/secrets to that node's root only"},
		&cli.StringSliceFlag{Name: "deny", Usage: "secret `GLOB` exported as an empty 0600 placeholder (repeatable; replaces the defaults)"},
		&cli.StringFlag{Name: "verify-rate", Usage: "re-verify served files in the background at `RATE` bytes per second (k, m, g suffixes; 0 = off; default: onesis.serve.verifyRate, else 32m)"},
		&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log `FORMAT`: text or json"},
		&cli.BoolFlag{Name: "debug", Usage: "log debug messages"},
	},
	Action: runServe,
}

// The flags serve and sync share, so both use the same caches.
var (
	stateDirFlag = &cli.StringFlag{Name: "state-dir", Usage: "serve's cache and state `DIR` (default: GITDIR/onesis/serve)"}
	initFlag     = &cli.StringFlag{Name: "init", Usage: "onesis-init `BINARY` for initramfs images (default: next to git-onesis)"}
	moduleFlag   = &cli.StringSliceFlag{Name: "module", Usage: "extra kernel `MODULE` for the initramfs (repeatable)"}
)

func runServe(c *cli.Context) error {
	if c.Args().Present() {
		return usageErr("serve takes no arguments")
	}
	level := slog.LevelInfo
	if c.Bool("debug") {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	var log *slog.Logger
	switch c.String("log-format") {
	case "text":
		log = slog.New(slog.NewTextHandler(c.App.ErrWriter, opts))
	case "json":
		log = slog.New(slog.NewJSONHandler(c.App.ErrWriter, opts))
	default:
		return usageErr("--log-format must be text or json")
	}
	r, err := discoverRepo()
	if err != nil {
		return err
	}
	repoDir := r.Top
	if repoDir == "" {
		repoDir = r.GitDir
	}
	cfg := serve.Config{
		RepoDir: repoDir, Iface: c.String("iface"), Ref: c.String("ref"),
		RequireSignature: c.Bool("require-signature"), RetryAfter: c.Duration("retry-after"),
		TFTPPort: c.Int("tftp-port"), HTTPPort: c.Int("http-port"), NFSPort: c.Int("nfs-port"), PortmapPort: c.Int("portmap-port"),
		NoDHCP: c.Bool("no-dhcp"), NoTFTP: c.Bool("no-tftp"), NoHTTP: c.Bool("no-http"), NoNFS: c.Bool("no-nfs"), NoPortmap: c.Bool("no-portmap"), NoPrune: c.Bool("no-prune"), PruneEvery: c.Duration("prune-every"), TFTPMax: c.Int("tftp-max"),
		AnnounceRA: !c.Bool("no-ra") && c.String("iface") != "",
		Discover:   c.Bool("discover"), PXELinux: c.Bool("pxelinux"), ProxyDHCP: c.Bool("proxy-dhcp"), IPXEDir: c.String("ipxe-dir"),
		StateDir: c.String("state-dir"), InitPath: c.String("init"), Modules: c.StringSlice("module"),
		Console: c.String("console"), NFSOptions: c.String("nfs-options"), SecretsDir: c.String("secrets-dir"), Logger: log,
	}
	cfg.VerifyRate = c.String("verify-rate")
	if !c.IsSet("verify-rate") {
		v, ok, err := r.Config("onesis.serve.verifyRate")
		if err != nil {
			return fatal(err)
		}
		if ok {
			if _, err := integrity.ParseRate(v); err != nil {
				return cli.Exit("fatal: onesis.serve.verifyRate: "+err.Error(), exitFatal)
			}
			cfg.VerifyRate = v
		}
	} else if _, err := integrity.ParseRate(cfg.VerifyRate); err != nil {
		return usageErr("--verify-rate: %v", err)
	}
	// Benchmarks only: measure what verification costs (docs/benchmarks.md).
	cfg.SkipVerify = os.Getenv("GIT_ONESIS_BENCH_SKIP_VERIFY") == "1"
	if c.IsSet("deny") {
		cfg.Deny = c.StringSlice("deny")
	}
	for _, bf := range c.StringSlice("boot-file") {
		fw, name, ok := strings.Cut(bf, "=")
		if !ok {
			return usageErr("--boot-file: %q is not FIRMWARE=NAME (FIRMWARE: %s)", bf, strings.Join(serve.BootFileFirmwares, ", "))
		}
		if cfg.BootFiles == nil {
			cfg.BootFiles = map[string]string{}
		}
		cfg.BootFiles[fw] = name
	}
	cfg.NFSExportDir = c.String("nfs-export-dir")
	if a := c.String("nfs-server"); a != "" {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return usageErr("--nfs-server: %q is not an IP address", a)
		}
		cfg.NFSHost = ip
	}
	if a := c.String("addr"); a != "" {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return usageErr("--addr: %q is not an IP address", a)
		}
		cfg.ServerIP = ip
	}
	if d := c.Duration("retry-after"); d < time.Second || d > time.Hour {
		return usageErr("--retry-after must be between 1s and 1h")
	}
	if n := c.Int("tftp-max"); n < 1 {
		return usageErr("--tftp-max: %d is not a number of transfers (at least 1)", n)
	}
	for _, p := range []string{"http-port", "tftp-port", "nfs-port", "portmap-port"} {
		if v := c.Int(p); v < 1 || v > 65535 {
			return usageErr("--%s: %d is not a port number (1-65535)", p, v)
		}
	}
	srv, err := serve.New(cfg, serve.Real())
	if err != nil {
		return cli.Exit("fatal: "+strings.TrimSpace(err.Error()), exitFatal)
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := srv.Run(ctx); err != nil {
		return cli.Exit(fmt.Sprintf("fatal: %v", err), exitFatal)
	}
	return nil
}
