package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/record/recordtest"
	"github.com/catalog-import/catalog-import/internal/state"
)

// BenchmarkDevImport measures what a user of `importctl dev` waits for: the
// time from the aws CLI upload of a generated product CSV (5% faulty rows)
// to `importctl status` showing the batch finished, with the template's
// defaults, and the emulator's peak memory (moto-peak-MB, VmHWM). "dev" is
// importctl dev on its own emulator (moto_server with the motoserver
// patch); "moto_server" is a plain moto_server started by hand and passed
// with --endpoint (decision 8's figures; slow: 2,000 rows only). Each
// iteration starts a fresh emulator (not timed). Run by hand:
//
//	go test -run '^$' -bench 'DevImport/dev/rows=10000' -benchtime 1x ./internal/e2e
func BenchmarkDevImport(b *testing.B) {
	for _, c := range []struct {
		server string
		rows   int
	}{{"dev", 2_000}, {"dev", 10_000}, {"moto_server", 2_000}} {
		b.Run(fmt.Sprintf("%s/rows=%d", c.server, c.rows), func(b *testing.B) {
			bin := sharedImportctl(b)
			dir := b.TempDir()
			file := filepath.Join(dir, "products.csv")
			f, err := os.Create(file)
			if err != nil {
				b.Fatal(err)
			}
			w := bufio.NewWriter(f)
			if err := recordtest.WriteProductCSV(w, c.rows, 7, true); err != nil {
				b.Fatal(err)
			}
			w.Flush()
			f.Close()
			var peak float64
			for range b.N {
				b.StopTimer()
				d := startDevForBench(b, bin, c.server == "moto_server")
				b.StartTimer()
				d.importFile(b, file)
				b.StopTimer()
				peak = max(peak, d.stop(b))
			}
			b.ReportMetric(peak, "moto-peak-MB")
			b.ReportMetric(float64(c.rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

type benchDev struct {
	dev      *proc
	moto     int
	own      *exec.Cmd // a moto_server started by hand, or nil
	endpoint string
	flags    []string
}

func startDevForBench(b *testing.B, bin string, plain bool) *benchDev {
	d := &benchDev{}
	env := devEnv(b)
	args := []string{"dev", "--log-level", "warn"}
	if plain {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		d.own = exec.Command("moto_server", "-H", "127.0.0.1", "-p", strconv.Itoa(port))
		d.own.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := d.own.Start(); err != nil {
			b.Fatal(err)
		}
		d.moto, d.endpoint = d.own.Process.Pid, fmt.Sprintf("http://127.0.0.1:%d", port)
		args = append(args, "--endpoint", d.endpoint)
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
			if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("moto_server did not start")
			}
		}
	}
	d.dev = startProc(b, b.TempDir(), env, bin, args...)
	if !plain {
		d.endpoint, _, d.moto = emulator(b, d.dev.line(b, "emulator: ", 2*time.Minute))
	}
	d.dev.line(b, "status: ", 2*time.Minute)
	d.flags = []string{"--endpoint", d.endpoint, "--stack", "dev"}
	return d
}

// importFile uploads file with the aws CLI and waits until status shows
// its batch finished.
func (d *benchDev) importFile(b *testing.B, file string) {
	up := exec.Command("aws", "--endpoint-url", d.endpoint, "s3", "cp", file, "s3://dev-123456789012-us-east-1/incoming/")
	up.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_DEFAULT_REGION=us-east-1")
	if out, err := up.CombinedOutput(); err != nil {
		b.Fatalf("upload: %v\n%s", err, out)
	}
	for deadline := time.Now().Add(15 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		out, err := exec.Command(sharedImportctl(b), append([]string{"status", "--json"}, d.flags...)...).Output()
		if err != nil {
			continue
		}
		var bs []state.Batch
		if json.Unmarshal(out, &bs) == nil && len(bs) == 1 && bs[0].Status.Finished() {
			return
		}
	}
	b.Fatalf("not finished after 15 minutes")
}

// stop stops dev (and a moto_server started by hand) and returns the
// emulator's peak resident memory in MB.
func (d *benchDev) stop(b *testing.B) float64 {
	var peak float64
	if s, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.moto)); err == nil {
		for l := range strings.SplitSeq(string(s), "\n") {
			if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				peak = kb / 1024
			}
		}
	}
	syscall.Kill(-d.dev.cmd.Process.Pid, syscall.SIGINT)
	<-d.dev.done
	if d.own != nil {
		syscall.Kill(-d.own.Process.Pid, syscall.SIGKILL)
		d.own.Wait()
	}
	if peak == 0 {
		b.Fatalf("no peak memory of moto_server (pid %d)", d.moto)
	}
	return peak
}
