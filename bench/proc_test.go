package bench

import (
	"os"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	// The name holds a space and a ')' to check fields are counted from the last ')'.
	line := "4242 (we ird) name) S 17 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 3 0 100 1000000 500 18446744073709551615\n"
	st, err := ParseProcStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if st.PPID != 17 || st.CPU != 325*clockTick {
		t.Errorf("got %+v, want ppid 17 cpu %v", st, 325*clockTick)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 (x) S z 1 1 0 -1 0 0 0 0 0 1 1 0"} {
		if _, err := ParseProcStat(bad); err == nil {
			t.Errorf("ParseProcStat(%q): want an error", bad)
		}
	}
}

func TestParseProcStatus(t *testing.T) {
	s := "Name:\tedge\nVmPeak:\t  900000 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t5\n"
	m, err := ParseProcStatus(s)
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS != 10<<20 || m.HWM != 20<<20 {
		t.Errorf("got %+v", m)
	}
	if _, err := ParseProcStatus("Name:\tkthread\n"); err == nil {
		t.Error("missing VmRSS: want an error")
	}
}

// TestOwnProcess reads the test binary's own /proc entries: the format is
// the kernel's, so this is the check that the parsers match it.
func TestOwnProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	cpu, err := TreeCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if cpu < 0 || cpu > time.Hour {
		t.Errorf("implausible cpu %v", cpu)
	}
	m, err := TreeMem(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS <= 0 || m.HWM < m.RSS {
		t.Errorf("implausible memory %+v", m)
	}
}
