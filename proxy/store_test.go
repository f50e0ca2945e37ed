package proxy

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// openStoreT opens a store in dir and fails the test on error; it is closed at cleanup.
func openStoreT(t testing.TB, dir string) (*stateStore, string) {
	t.Helper()
	st, aside, err := openStateStore(dir)
	if err != nil {
		t.Fatalf("openStateStore(%s): %v", dir, err)
	}
	t.Cleanup(func() { _ = st.close() })
	return st, aside
}

// stateWorkers returns n workers named w000000… with blobs of size bytes derived from the name.
func stateWorkers(n, size int) map[string][]byte {
	m := make(map[string][]byte, n)
	for i := range n {
		name := fmt.Sprintf("acct%d.w%06d", i%97, i)
		blob := bytes.Repeat([]byte(name), size/len(name)+1)[:size]
		m[name] = blob
	}
	return m
}

func TestStateStoreRoundTrip(t *testing.T) {
	dir := t.TempDir()
	st, aside, err := openStateStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if aside != "" {
		t.Fatalf("fresh dir: setAside = %q; want \"\"", aside)
	}
	w, f, err := st.load()
	if err != nil || len(w) != 0 || f != nil {
		t.Fatalf("fresh load = %d workers, fleet %v, %v; want 0, nil, nil", len(w), f, err)
	}

	workers := stateWorkers(10_000, 300)
	workers[""] = []byte("the anonymous worker")
	workers["with space/ünïcode\x00nul"] = []byte{}
	workers[strings.Repeat("long", 100)] = []byte{1, 2, 3}
	fleet := []byte("fleet totals")
	if err := st.save(workers, fleet); err != nil {
		t.Fatal(err)
	}
	if err := st.close(); err != nil {
		t.Fatal(err)
	}

	st2, aside := openStoreT(t, dir)
	if aside != "" {
		t.Fatalf("reopen: setAside = %q; want \"\"", aside)
	}
	gotW, gotF, err := st2.load()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gotF, fleet) {
		t.Errorf("fleet = %q; want %q", gotF, fleet)
	}
	if len(gotW) != len(workers) {
		t.Fatalf("got %d workers; want %d", len(gotW), len(workers))
	}
	for name, want := range workers {
		got, ok := gotW[name]
		if !ok || !bytes.Equal(got, want) {
			t.Fatalf("worker %q = %q (present %v); want %q", name, got, ok, want)
		}
	}
	if got := gotW["with space/ünïcode\x00nul"]; got == nil {
		t.Errorf("empty blob loaded as nil; want non-nil empty")
	}
}

func TestStateStoreSaveReplaces(t *testing.T) {
	dir := t.TempDir()
	st, _ := openStoreT(t, dir)
	if err := st.save(map[string][]byte{"a": []byte("1"), "b": []byte("2"), "": []byte("0")}, []byte("f1")); err != nil {
		t.Fatal(err)
	}
	if err := st.save(map[string][]byte{"b": []byte("22"), "c": []byte("3")}, nil); err != nil {
		t.Fatal(err)
	}
	w, f, err := st.load()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{"b": []byte("22"), "c": []byte("3")}
	if !maps.EqualFunc(w, want, bytes.Equal) {
		t.Errorf("workers = %q; want %q", w, want)
	}
	if f != nil {
		t.Errorf("fleet = %q after saving nil; want nil", f)
	}
}

func TestStateStoreLimits(t *testing.T) {
	st, _ := openStoreT(t, t.TempDir())
	if err := st.save(map[string][]byte{"a": []byte("kept")}, []byte("f")); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, stateMaxBlob+1)
	if err := st.save(map[string][]byte{"x": big}, nil); err == nil {
		t.Errorf("save with a %d-byte worker blob: err = nil; want an error", len(big))
	}
	if err := st.save(nil, big); err == nil {
		t.Errorf("save with a %d-byte fleet blob: err = nil; want an error", len(big))
	}
	if err := st.save(map[string][]byte{"x": big[:stateMaxBlob]}, big[:stateMaxBlob]); err != nil {
		t.Errorf("save at exactly the blob limit: %v", err)
	}
	w, _, err := st.load()
	if err != nil || len(w) != 1 || len(w["x"]) != stateMaxBlob {
		t.Errorf("after refused saves and one at the limit: %d workers, %v; want x only", len(w), err)
	}
	// Over the worker count: the count is checked before anything else, so the
	// blobs can be shared.
	many := make(map[string][]byte, stateMaxWorkers+1)
	for i := range stateMaxWorkers + 1 {
		many[strconv.Itoa(i)] = nil
	}
	if err := st.save(many, nil); err == nil {
		t.Errorf("save with %d workers: err = nil; want an error", len(many))
	}
}

// checkSetAside asserts that aside is a set-aside path in dir holding want, and that
// the store opened in its place is fresh and works.
func checkSetAside(t *testing.T, dir string, st *stateStore, aside string, want []byte) {
	t.Helper()
	prefix := filepath.Join(dir, "hashrelay.db.set-aside-")
	if !strings.HasPrefix(aside, prefix) {
		t.Fatalf("setAside = %q; want prefix %q", aside, prefix)
	}
	stamp := strings.TrimPrefix(aside, prefix)
	if i := strings.IndexByte(stamp, '-'); i >= 0 {
		stamp = stamp[:i]
	}
	if _, err := time.Parse("20060102T150405Z", stamp); err != nil {
		t.Errorf("set-aside stamp %q: %v", stamp, err)
	}
	got, err := os.ReadFile(aside)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("set-aside file: %d bytes, differs from the original %d bytes", len(got), len(want))
	}
	w, f, err := st.load()
	if err != nil || len(w) != 0 || f != nil {
		t.Fatalf("fresh store after set-aside: %d workers, fleet %q, %v; want empty", len(w), f, err)
	}
	if err := st.save(map[string][]byte{"new": []byte("1")}, []byte("f")); err != nil {
		t.Fatalf("save into fresh store: %v", err)
	}
	if w, _, err := st.load(); err != nil || string(w["new"]) != "1" {
		t.Fatalf("load from fresh store = %q, %v", w, err)
	}
}

// writeBolt creates path as a bbolt database filled by fill.
func writeBolt(t *testing.T, path string, fill func(tx *bolt.Tx) error) []byte {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fill); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestStateStoreSetAside(t *testing.T) {
	tests := []struct {
		name string
		make func(t *testing.T, path string) []byte // writes path, returns its bytes
	}{
		{"random bytes", func(t *testing.T, path string) []byte {
			b := make([]byte, 64<<10)
			rand.Read(b)
			writeFile(t, path, b)
			return b
		}},
		{"short garbage", func(t *testing.T, path string) []byte {
			b := []byte("not a database\n")
			writeFile(t, path, b)
			return b
		}},
		{"truncated store", func(t *testing.T, path string) []byte {
			st, _, err := openStateStore(filepath.Dir(path))
			if err != nil {
				t.Fatal(err)
			}
			if err := st.save(stateWorkers(5_000, 300), []byte("fleet")); err != nil {
				t.Fatal(err)
			}
			if err := st.close(); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(path)
			return b
		}},
		{"damaged pages", func(t *testing.T, path string) []byte {
			st, _, err := openStateStore(filepath.Dir(path))
			if err != nil {
				t.Fatal(err)
			}
			if err := st.save(stateWorkers(5_000, 300), []byte("fleet")); err != nil {
				t.Fatal(err)
			}
			if err := st.close(); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(path)
			// Keep both meta pages (the first two 4 KiB pages), scramble everything after.
			rand.Read(b[2*4096:])
			writeFile(t, path, b)
			return b
		}},
		{"foreign bbolt", func(t *testing.T, path string) []byte {
			return writeBolt(t, path, func(tx *bolt.Tx) error {
				b, err := tx.CreateBucket([]byte("other"))
				if err != nil {
					return err
				}
				return b.Put([]byte("their key"), []byte("their value"))
			})
		}},
		{"newer schema", func(t *testing.T, path string) []byte {
			return writeBolt(t, path, func(tx *bolt.Tx) error {
				m, err := tx.CreateBucket([]byte("meta"))
				if err != nil {
					return err
				}
				if _, err := tx.CreateBucket([]byte("workers")); err != nil {
					return err
				}
				return m.Put([]byte("schema"), []byte("hashrelay-state/2"))
			})
		}},
		{"no marker", func(t *testing.T, path string) []byte {
			return writeBolt(t, path, func(tx *bolt.Tx) error {
				_, err := tx.CreateBucket([]byte("meta"))
				return err
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			orig := tt.make(t, filepath.Join(dir, "hashrelay.db"))
			st, aside := openStoreT(t, dir)
			checkSetAside(t, dir, st, aside, orig)
		})
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// An empty file (a crash before bbolt's first write) holds nothing: it becomes the store.
func TestStateStoreEmptyFileKept(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "hashrelay.db"), nil)
	st, aside := openStoreT(t, dir)
	if aside != "" {
		t.Errorf("setAside = %q; want \"\"", aside)
	}
	if err := st.save(map[string][]byte{"a": nil}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestStateStoreSetAsideTwiceInOneSecond(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hashrelay.db")
	now := time.Date(2026, 11, 24, 19, 30, 0, 0, time.FixedZone("CET", 3600))
	var got []string
	for i := range 3 {
		content := []byte("garbage " + strconv.Itoa(i))
		writeFile(t, path, content)
		aside, err := setAsideStateFile(path, now)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(aside); !bytes.Equal(b, content) {
			t.Errorf("%s holds %q; want %q", aside, b, content)
		}
		got = append(got, aside)
	}
	want := []string{
		path + ".set-aside-20261124T183000Z",
		path + ".set-aside-20261124T183000Z-2",
		path + ".set-aside-20261124T183000Z-3",
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("set-aside %d = %q; want %q", i, got[i], want[i])
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("original still at %s after set-aside (stat err %v)", path, err)
	}

	// And through openStateStore, back to back.
	writeFile(t, path, []byte("one"))
	st1, a1, err := openStateStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	_ = st1.close()
	writeFile(t, path, []byte("two"))
	st2, a2 := openStoreT(t, dir)
	_ = st2
	if a1 == "" || a2 == "" || a1 == a2 {
		t.Errorf("two set-asides: %q and %q; want two different paths", a1, a2)
	}
}

func TestStateStoreUnusableDir(t *testing.T) {
	parent := t.TempDir()
	notDir := filepath.Join(parent, "state")
	writeFile(t, notDir, []byte("a file, not a directory"))
	if st, _, err := openStateStore(notDir); err == nil {
		_ = st.close()
		t.Fatalf("openStateStore on a file: err = nil; want an error")
	}
	if st, _, err := openStateStore(filepath.Join(notDir, "sub")); err == nil {
		_ = st.close()
		t.Fatalf("openStateStore under a file: err = nil; want an error")
	}
	if b, _ := os.ReadFile(notDir); string(b) != "a file, not a directory" {
		t.Errorf("the file in the way was changed: %q", b)
	}
}

func TestStateStoreLocked(t *testing.T) {
	dir := t.TempDir()
	st, _ := openStoreT(t, dir)
	if err := st.save(map[string][]byte{"a": []byte("1")}, nil); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	st2, aside, err := openStateStore(dir)
	elapsed := time.Since(start)
	if err == nil {
		_ = st2.close()
		t.Fatalf("second open while locked: err = nil; want an error")
	}
	if !strings.Contains(err.Error(), "another hashrelay") {
		t.Errorf("err = %q; want it to mention another hashrelay", err)
	}
	if aside != "" {
		t.Errorf("setAside = %q while locked; want \"\"", aside)
	}
	if elapsed > 2500*time.Millisecond {
		t.Errorf("second open took %v; want about %v", elapsed, stateLockTimeout)
	}
	// The held store is untouched.
	if w, _, err := st.load(); err != nil || string(w["a"]) != "1" {
		t.Errorf("holder's load after a refused open = %q, %v", w, err)
	}
}

const stateCrashEnv = "HASHRELAY_STATE_CRASH_DIR"

// TestStateStoreCrashChild is the child of TestStateStoreCrash: it saves generation
// after generation into the store in $HASHRELAY_STATE_CRASH_DIR and prints each
// generation number once its save has returned, until it is killed.
func TestStateStoreCrashChild(t *testing.T) {
	dir := os.Getenv(stateCrashEnv)
	if dir == "" {
		t.Skip("child of TestStateStoreCrash only")
	}
	st, _, err := openStateStore(dir)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	for gen := uint64(1); ; gen++ {
		w, f := crashGeneration(gen)
		if err := st.save(w, f); err != nil {
			fmt.Println("error:", err)
			os.Exit(2)
		}
		fmt.Println(gen)
	}
}

// crashGeneration is save number gen: 1000 to 1499 workers (the count varies, so a
// mix of two saves shows), every blob carrying gen.
func crashGeneration(gen uint64) (map[string][]byte, []byte) {
	n := 1000 + int(gen%500)
	w := make(map[string][]byte, n)
	for i := range n {
		blob := make([]byte, 300)
		binary.LittleEndian.PutUint64(blob, gen)
		binary.LittleEndian.PutUint64(blob[292:], gen)
		w["w"+strconv.Itoa(i)] = blob
	}
	return w, binary.LittleEndian.AppendUint64(nil, gen)
}

func TestStateStoreCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	for round := range 3 {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestStateStoreCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), stateCrashEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait for a few saves, then kill at a moment that varies with the round.
		sc := bufio.NewScanner(out)
		var last uint64
		for last < uint64(5+round*7) && sc.Scan() {
			g, err := strconv.ParseUint(sc.Text(), 10, 64)
			if err != nil {
				_ = cmd.Process.Kill()
				t.Fatalf("child: %s", sc.Text())
			}
			last = g
		}
		time.Sleep(time.Duration(round) * 7 * time.Millisecond)
		if err := cmd.Process.Kill(); err != nil { // SIGKILL: no deferred code, no flush
			t.Fatal(err)
		}
		for sc.Scan() { // saves that returned between our last read and the kill
			if g, err := strconv.ParseUint(sc.Text(), 10, 64); err == nil {
				last = g
			}
		}
		_ = cmd.Wait()
		if last == 0 {
			t.Fatalf("round %d: child never saved", round)
		}

		st, aside := openStoreT(t, dir)
		if aside != "" {
			t.Fatalf("round %d: store set aside after a crash (%s); want it kept", round, aside)
		}
		w, f, err := st.load()
		if err != nil {
			t.Fatal(err)
		}
		if len(f) != 8 {
			t.Fatalf("round %d: fleet blob %x; want 8 bytes", round, f)
		}
		gen := binary.LittleEndian.Uint64(f)
		if gen < last {
			t.Errorf("round %d: loaded generation %d; want at least %d (its save had returned)", round, gen, last)
		}
		want, _ := crashGeneration(gen)
		if len(w) != len(want) {
			t.Fatalf("round %d: generation %d has %d workers; want %d", round, gen, len(w), len(want))
		}
		for name, blob := range w {
			if _, ok := want[name]; !ok || len(blob) != 300 ||
				binary.LittleEndian.Uint64(blob) != gen || binary.LittleEndian.Uint64(blob[292:]) != gen {
				t.Fatalf("round %d: worker %q is not from generation %d: %x…", round, name, gen, blob[:8])
			}
		}
		t.Logf("round %d: killed after save %d returned; loaded generation %d, %d workers", round, last, gen, len(w))
		_ = st.close()
	}
}

// BenchmarkStateSave saves the accounts cap: 65,536 workers of 300 bytes each.
func BenchmarkStateSave(b *testing.B) {
	st, _ := openStoreT(b, b.TempDir())
	workers := stateWorkers(65_536, 300)
	fleet := make([]byte, 4096)
	b.ReportAllocs()
	b.SetBytes(65_536 * 300)
	for b.Loop() {
		if err := st.save(workers, fleet); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/save")
}

// BenchmarkStateLoad loads what BenchmarkStateSave saves.
func BenchmarkStateLoad(b *testing.B) {
	st, _ := openStoreT(b, b.TempDir())
	if err := st.save(stateWorkers(65_536, 300), nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := st.load(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStateOpen opens (inspection, lock, marker check) a store of 65,536 workers.
func BenchmarkStateOpen(b *testing.B) {
	dir := b.TempDir()
	st, _, err := openStateStore(dir)
	if err != nil {
		b.Fatal(err)
	}
	if err := st.save(stateWorkers(65_536, 300), nil); err != nil {
		b.Fatal(err)
	}
	_ = st.close()
	for b.Loop() {
		st, aside, err := openStateStore(dir)
		if err != nil || aside != "" {
			b.Fatal(err, aside)
		}
		_ = st.close()
	}
}

// Damage anywhere in the file must end in a set-aside or a store that loads and
// saves: never a panic, a fault or a hang. bbolt has no checksums on data pages, so a
// flipped byte inside a value may go unnoticed; that is the only silent outcome.
func TestStateStoreDamageNeverCrashes(t *testing.T) {
	src := t.TempDir()
	st, _, err := openStateStore(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.save(stateWorkers(2_000, 300), []byte("fleet")); err != nil {
		t.Fatal(err)
	}
	_ = st.close()
	good, err := os.ReadFile(filepath.Join(src, "hashrelay.db"))
	if err != nil {
		t.Fatal(err)
	}

	rng := mrand.New(mrand.NewPCG(1, 2))
	var variants [][]byte
	for size := 4096; size < len(good); size += 4096 * 7 {
		variants = append(variants, good[:size])
	}
	for range 40 {
		b := bytes.Clone(good)
		for range 1 + rng.IntN(8) {
			b[2*4096+rng.IntN(len(b)-2*4096)] ^= byte(1 + rng.IntN(255))
		}
		variants = append(variants, b)
	}
	for range 10 { // a whole page of garbage
		b := bytes.Clone(good)
		p := 2 + rng.IntN(len(b)/4096-2)
		for i := p * 4096; i < (p+1)*4096; i++ {
			b[i] = byte(rng.Uint32())
		}
		variants = append(variants, b)
	}
	asides := 0
	for i, v := range variants {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "hashrelay.db"), v)
		st, aside, err := openStateStore(dir)
		if err != nil {
			t.Fatalf("variant %d: %v", i, err)
		}
		if aside != "" {
			asides++
		} else if _, _, err := st.load(); err != nil {
			t.Errorf("variant %d: kept but load fails: %v", i, err)
		} else if err := st.save(map[string][]byte{"a": nil}, nil); err != nil {
			t.Errorf("variant %d: kept but save fails: %v", i, err)
		}
		_ = st.close()
	}
	t.Logf("%d damaged variants: %d set aside, %d kept", len(variants), asides, len(variants)-asides)
}
