package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/<pid>/stat. It
// is 100 on every Linux architecture Go supports, and Go cannot ask sysconf.
const clockTick = 10 * time.Millisecond

// ProcStat is the part of /proc/<pid>/stat the harness reads.
type ProcStat struct {
	PPID int
	CPU  time.Duration // utime + stime, all threads
}

// ParseProcStat reads a /proc/<pid>/stat line. The command name is in
// parentheses and may itself hold spaces and parentheses, so the fields are
// counted from the last ')'.
func ParseProcStat(s string) (ProcStat, error) {
	end := strings.LastIndexByte(s, ')')
	if end < 0 {
		return ProcStat{}, fmt.Errorf("stat: no command name in %q", s)
	}
	f := strings.Fields(s[end+1:])
	// f[0] is field 3 (state); ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return ProcStat{}, fmt.Errorf("stat: %d fields after the name, want at least 13", len(f))
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return ProcStat{}, fmt.Errorf("stat ppid: %w", err)
	}
	utime, err := strconv.ParseInt(f[11], 10, 64)
	if err != nil {
		return ProcStat{}, fmt.Errorf("stat utime: %w", err)
	}
	stime, err := strconv.ParseInt(f[12], 10, 64)
	if err != nil {
		return ProcStat{}, fmt.Errorf("stat stime: %w", err)
	}
	return ProcStat{PPID: ppid, CPU: time.Duration(utime+stime) * clockTick}, nil
}

// ProcMem is the memory a process holds, from /proc/<pid>/status.
type ProcMem struct {
	RSS int64 // VmRSS, bytes
	HWM int64 // VmHWM, the peak RSS, bytes
}

// ParseProcStatus reads VmRSS and VmHWM out of /proc/<pid>/status.
func ParseProcStatus(s string) (ProcMem, error) {
	var m ProcMem
	var found int
	for line := range strings.Lines(s) {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("status %s: unexpected %q", key, strings.TrimSpace(val))
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return m, fmt.Errorf("status %s: %w", key, err)
		}
		if key == "VmRSS" {
			m.RSS = kb << 10
		} else {
			m.HWM = kb << 10
		}
		found++
	}
	if found != 2 {
		return m, fmt.Errorf("status: VmRSS or VmHWM missing")
	}
	return m, nil
}

// readStat reads /proc/<pid>/stat.
func readStat(pid int) (ProcStat, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return ProcStat{}, err
	}
	return ParseProcStat(string(b))
}

// readMem reads /proc/<pid>/status.
func readMem(pid int) (ProcMem, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return ProcMem{}, err
	}
	return ParseProcStatus(string(b))
}

// processTree returns pid and all its descendants: nginx serves from a
// worker that is the master's child, and both must be counted.
func processTree(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return []int{pid}
	}
	children := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(p)
		if err != nil {
			continue // exited meanwhile
		}
		children[st.PPID] = append(children[st.PPID], p)
	}
	tree := []int{pid}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i]]...)
	}
	return tree
}

// TreeCPU returns the CPU time used so far by pid and its descendants.
func TreeCPU(pid int) (time.Duration, error) {
	var total time.Duration
	for i, p := range processTree(pid) {
		st, err := readStat(p)
		if err != nil {
			if i == 0 {
				return 0, fmt.Errorf("cpu of %d: %w", pid, err)
			}
			continue
		}
		total += st.CPU
	}
	return total, nil
}

// TreeMem sums the memory of pid and its descendants. The sum of peaks is an
// upper bound of the tree's peak; for a single process it is exact.
func TreeMem(pid int) (ProcMem, error) {
	var total ProcMem
	for i, p := range processTree(pid) {
		m, err := readMem(p)
		if err != nil {
			if i == 0 {
				return total, fmt.Errorf("memory of %d: %w", pid, err)
			}
			continue
		}
		total.RSS += m.RSS
		total.HWM += m.HWM
	}
	return total, nil
}
