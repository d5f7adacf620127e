package nfsroot

import (
	"fmt"
	"log/slog"
	"sync"

	nfs "github.com/willscott/go-nfs"
)

// goNFSLog routes go-nfs's own (package-global) log lines into slog at
// debug level: what an admin needs (MOUNT decisions, refusals, exports
// prepared) is logged by this package; go-nfs's messages ("No handler for
// 100227.0" for the NFS_ACL probe, attribute lookups of vanished names) are
// for debugging.
type goNFSLog struct {
	log   *slog.Logger
	level nfs.LogLevel
}

var setGoNFSLog sync.Once

// routeGoNFSLog installs the adapter once per process, with the first
// Server's logger.
func routeGoNFSLog(l *slog.Logger) {
	setGoNFSLog.Do(func() {
		nfs.SetLogger(&goNFSLog{log: l.With("component", "go-nfs"), level: nfs.InfoLevel})
	})
}

func (g *goNFSLog) SetLevel(level nfs.LogLevel) { g.level = level }
func (g *goNFSLog) GetLevel() nfs.LogLevel      { return g.level }
func (g *goNFSLog) ParseLevel(level string) (nfs.LogLevel, error) {
	return (&nfs.DefaultLogger{}).ParseLevel(level)
}

func (g *goNFSLog) out(level nfs.LogLevel, msg string) {
	if level > g.level {
		return
	}
	g.log.Debug(msg)
}

func (g *goNFSLog) Panic(args ...any) { msg := fmt.Sprint(args...); g.log.Error(msg); panic(msg) }
func (g *goNFSLog) Fatal(args ...any) { g.log.Error(fmt.Sprint(args...)) }
func (g *goNFSLog) Error(args ...any) { g.out(nfs.ErrorLevel, fmt.Sprint(args...)) }
func (g *goNFSLog) Warn(args ...any)  { g.out(nfs.WarnLevel, fmt.Sprint(args...)) }
func (g *goNFSLog) Info(args ...any)  { g.out(nfs.InfoLevel, fmt.Sprint(args...)) }
func (g *goNFSLog) Debug(args ...any) { g.out(nfs.DebugLevel, fmt.Sprint(args...)) }
func (g *goNFSLog) Trace(args ...any) { g.out(nfs.TraceLevel, fmt.Sprint(args...)) }
func (g *goNFSLog) Print(args ...any) { g.out(nfs.InfoLevel, fmt.Sprint(args...)) }
func (g *goNFSLog) Panicf(f string, args ...any) {
	msg := fmt.Sprintf(f, args...)
	g.log.Error(msg)
	panic(msg)
}
func (g *goNFSLog) Fatalf(f string, args ...any) { g.log.Error(fmt.Sprintf(f, args...)) }
func (g *goNFSLog) Errorf(f string, args ...any) { g.out(nfs.ErrorLevel, fmt.Sprintf(f, args...)) }
func (g *goNFSLog) Warnf(f string, args ...any)  { g.out(nfs.WarnLevel, fmt.Sprintf(f, args...)) }
func (g *goNFSLog) Infof(f string, args ...any)  { g.out(nfs.InfoLevel, fmt.Sprintf(f, args...)) }
func (g *goNFSLog) Debugf(f string, args ...any) { g.out(nfs.DebugLevel, fmt.Sprintf(f, args...)) }
func (g *goNFSLog) Tracef(f string, args ...any) { g.out(nfs.TraceLevel, fmt.Sprintf(f, args...)) }
func (g *goNFSLog) Printf(f string, args ...any) { g.out(nfs.InfoLevel, fmt.Sprintf(f, args...)) }
