package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/ferryhq/ferry/internal/peer"
)

// machineInfo describes the machine and the tools' versions for the report.
func machineInfo(ctx context.Context, tools []Tool) []KV {
	kv := []KV{
		{"nproc", strconv.Itoa(runtime.NumCPU())},
		{"CPU", cpuModel()},
		{"memory", memTotal()},
		{"OS", osRelease()},
		{"kernel", readTrim("/proc/sys/kernel/osrelease")},
		{"Go", goVersion(ctx)},
	}
	if v := firstLine(ctx, "git", "rev-parse", "--short", "HEAD"); v != "" {
		// --no-optional-locks: status must not refresh the index.
		if dirty := firstLine(ctx, "git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"); dirty != "" {
			v += " (with uncommitted changes)"
		}
		kv = append(kv, KV{"ferry commit", v})
	}
	seen := map[string]bool{}
	for _, t := range tools {
		if seen[t.Bin] {
			continue // e.g. curl+fsync is curl
		}
		seen[t.Bin] = true
		name := filepath.Base(t.Bin)
		if strings.HasPrefix(t.Name, "ferry") {
			name = "ferry"
		}
		kv = append(kv, KV{name, t.Version(ctx)})
	}
	if v := peer.NginxVersion(ctx); v != "" {
		kv = append(kv, KV{"nginx", v})
	}
	kv = append(kv, KV{"TCP congestion control", hostCC() + " (machine default; the WAN profiles set their own, see each profile)"})
	if v := firstLine(ctx, "ip", "-V"); v != "" {
		kv = append(kv, KV{"iproute2", v})
	}
	if p, err := peer.FindBinary("ethtool"); err == nil {
		if v := firstLine(ctx, p, "--version"); v != "" {
			kv = append(kv, KV{"ethtool", v})
		}
	}
	return kv
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func memTotal() string {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err == nil {
				return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
			}
		}
	}
	return "unknown"
}

func osRelease() string {
	f, err := os.Open("/etc/os-release")
	if err != nil {
		return runtime.GOOS
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return runtime.GOOS
}

func goVersion(ctx context.Context) string {
	if out, err := exec.CommandContext(ctx, "go", "version").Output(); err == nil {
		return strings.TrimPrefix(strings.TrimSpace(string(out)), "go version ")
	}
	return runtime.Version()
}
