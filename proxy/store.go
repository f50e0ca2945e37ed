package proxy

// The state store: HashRelay's accounts across restarts.
//
// Why bbolt (go.etcd.io/bbolt): it is a maintained, pure-Go, single-file B+tree store whose
// every write transaction is fsynced on commit with copy-on-write pages and two meta
// pages, so a crash loses at most the transaction in progress and never damages what
// was committed; no server, no cgo, no log files to compact.
//
// Layout of DIR/hashrelay.db:
//
//	meta     bucket: "schema" = "hashrelay-state/1" (the marker, written at creation),
//	                 "fleet"  = the fleet blob (absent until one is saved),
//	                 "anon-worker" = the blob of the worker whose name is "" (bbolt keys
//	                 must be non-empty, so that one name lives here instead of in workers)
//	workers  bucket: worker name → blob
//
// A file that bbolt cannot open as a database (random bytes, truncated, bad checksums),
// or a database without exactly our marker (another program's, or a newer schema), is
// renamed aside and a fresh store created in its place: never wiped, never rewritten.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// State store limits, side by side.
const (
	stateFileName  = "hashrelay.db"
	stateSchema    = "hashrelay-state/1" // the marker; change it when the layout changes
	stateSetAside  = ".set-aside-"       // stateFileName + stateSetAside + UTC timestamp
	stateStampForm = "20060102T150405Z"  // YYYYMMDDThhmmssZ, always UTC

	// stateLockTimeout bounds the wait for bbolt's file lock, held by another process
	// (another hashrelay with the same -state-dir) for as long as it runs.
	stateLockTimeout = time.Second

	// stateMaxWorkers and stateMaxBlob bound one save. The accounts cap is 65,536
	// workers; the store refuses far more than that rather than grow without bound.
	stateMaxWorkers = 1 << 20
	stateMaxBlob    = 64 << 10 // per worker blob and for the fleet blob
)

var (
	stateBucketMeta    = []byte("meta")
	stateBucketWorkers = []byte("workers")
	stateKeySchema     = []byte("schema")
	stateKeyFleet      = []byte("fleet")
	stateKeyAnonWorker = []byte("anon-worker")
)

// errStateLocked is returned by openStateStore when the file lock is held elsewhere.
var errStateLocked = errors.New("state store is locked: another hashrelay may be using -state-dir")

// stateStore keeps HashRelay's accounts across restarts in one bbolt file in a directory.
//
// bbolt (go.etcd.io/bbolt, etcd's maintained fork of BoltDB) because it is a pure-Go,
// single-file, transactional store that fsyncs every commit and never overwrites committed
// pages: a crash loses at most the save in progress and never corrupts an earlier one.
//
// Each save is one bbolt transaction, fsynced on commit: a crash leaves either the
// previous save or this one, whole. A save is refused (error, nothing written) when it
// holds more than stateMaxWorkers (1<<20) workers, or any blob (worker or fleet) over
// stateMaxBlob (64 KiB). Worker names may be any string up to bbolt's key limit (32 KiB),
// including "", which is kept under a reserved key in the meta bucket.
//
// Safe for concurrent use: bbolt serializes writers and readers see committed saves.
type stateStore struct {
	db   *bolt.DB
	path string
}

// openStateStore opens (creating) DIR/hashrelay.db. A file that is not a bbolt database (corrupt, truncated,
// random bytes) or is a bbolt database without HashRelay's marker (foreign: another program's, or a newer
// schema this version can't read) is never wiped: it is renamed aside to DIR/hashrelay.db.set-aside-<UTC timestamp YYYYMMDDThhmmssZ>
// (unique even if called twice in a second) and a fresh store is created; setAside is the new path of the old file ("" when nothing
// was set aside). err only when the directory can't be created/used or the fresh store can't be opened.
// Opening must not hang if another process holds the file lock: use bbolt's Options.Timeout (e.g. 1 s) and return an error saying
// another hashrelay may be using -state-dir.
//
// An empty file (zero bytes: a crash before bbolt wrote its first pages) and an empty
// bbolt database (no buckets: a crash before the marker was written) hold nothing and
// are made into a fresh store in place. The reason a file was set aside is not returned;
// the caller reports the path.
func openStateStore(dir string) (st *stateStore, setAside string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", fmt.Errorf("state store: %w", err)
	}
	path := filepath.Join(dir, stateFileName)

	keep, err := inspectStateFile(path)
	if err != nil {
		return nil, "", err
	}
	if !keep {
		if setAside, err = setAsideStateFile(path, time.Now()); err != nil {
			return nil, "", err
		}
	}

	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: stateLockTimeout})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, setAside, fmt.Errorf("%w (%s)", errStateLocked, path)
		}
		return nil, setAside, fmt.Errorf("state store: open %s: %w", path, err)
	}
	if err := db.Update(initStateMarker); err != nil {
		_ = db.Close()
		return nil, setAside, fmt.Errorf("state store: %s: %w", path, err)
	}
	return &stateStore{db: db, path: path}, setAside, nil
}

// initStateMarker writes the marker into a database with no buckets, and accepts one
// that already carries it. Anything else appeared between inspection and this
// transaction (another program writing the file) and is an error, not overwritten.
func initStateMarker(tx *bolt.Tx) error {
	if meta := tx.Bucket(stateBucketMeta); meta != nil {
		if !bytes.Equal(meta.Get(stateKeySchema), []byte(stateSchema)) {
			return errors.New("schema marker changed while opening")
		}
		if tx.Bucket(stateBucketWorkers) == nil {
			return errors.New("workers bucket missing")
		}
		return nil
	}
	if !stateRootEmpty(tx) {
		return errors.New("foreign buckets appeared while opening")
	}
	meta, err := tx.CreateBucket(stateBucketMeta)
	if err != nil {
		return err
	}
	if err := meta.Put(stateKeySchema, []byte(stateSchema)); err != nil {
		return err
	}
	_, err = tx.CreateBucket(stateBucketWorkers)
	return err
}

// stateRootEmpty reports whether the database has no top-level bucket at all.
func stateRootEmpty(tx *bolt.Tx) bool {
	k, _ := tx.Cursor().First()
	return k == nil
}

// inspectStateFile decides, read-only, whether the file at path may be opened as
// HashRelay's store (keep) or must be set aside (!keep). A missing or zero-length file
// is kept: bbolt initializes it. err is for what setting aside cannot fix: the lock is
// held elsewhere, or the file can't be opened at all (permissions, a directory).
//
// bbolt reads pages through an mmap and trusts them: a damaged file can make it panic,
// and a truncated one can fault (SIGBUS) on a page past the end of the file. So before
// bbolt touches any page but the meta pages, checkBoltPages walks the file's pages with
// ordinary bounds-checked reads. As a second line, panics here are recovered and faults
// in this goroutine are panics (debug.SetPanicOnFault), both meaning "set aside"; a
// panic inside bolt.Open leaves its mapping behind (bbolt never returned the DB), the
// file itself is closed.
func inspectStateFile(path string) (keep bool, err error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("state store: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return false, fmt.Errorf("state store: %s is not a regular file", path)
	}
	if fi.Size() == 0 {
		return true, nil
	}

	var file *os.File // captured so a panicking Open can still be cleaned up
	opts := &bolt.Options{
		ReadOnly: true,
		Timeout:  stateLockTimeout,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			file = f
			return f, err
		},
	}

	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	var db *bolt.DB
	defer func() {
		if r := recover(); r != nil {
			if db == nil && file != nil {
				_ = file.Close() // an opened db is closed by its own defer below
			}
			keep, err = false, nil
		}
	}()

	db, err = bolt.Open(path, 0o600, opts)
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return false, fmt.Errorf("%w (%s)", errStateLocked, path)
		}
		var pe *fs.PathError
		if file == nil && errors.As(err, &pe) {
			return false, fmt.Errorf("state store: %w", err) // never opened: not the file's fault
		}
		return false, nil // not a bbolt file, bad version, bad checksums, unmappable
	}
	defer db.Close()
	if err := checkBoltPages(file); err != nil {
		return false, nil
	}
	if err := db.View(checkStateTx); err != nil {
		return false, nil
	}
	return true, nil
}

// checkStateTx returns an error when the database in tx is not HashRelay's. An empty
// database (no buckets) is HashRelay's: nothing to lose. checkBoltPages has already
// vouched for every page tx can reach.
func checkStateTx(tx *bolt.Tx) error {
	if stateRootEmpty(tx) {
		return nil
	}
	meta, workers := tx.Bucket(stateBucketMeta), tx.Bucket(stateBucketWorkers)
	if meta == nil || workers == nil {
		return errors.New("foreign: no HashRelay buckets")
	}
	if got := meta.Get(stateKeySchema); !bytes.Equal(got, []byte(stateSchema)) {
		return fmt.Errorf("foreign: schema %q", got)
	}
	return nil
}

// bbolt's on-disk format, as far as checkBoltPages reads it (go.etcd.io/bbolt
// internal/common; fields in the machine's byte order, which is how bbolt writes them).
const (
	boltPageHeader  = 16 // id u64, flags u16, count u16, overflow u32
	boltElement     = 16 // branch: pos u32, ksize u32, pgid u64; leaf: flags u32, pos u32, ksize u32, vsize u32
	boltBucketValue = 16 // root pgid u64, sequence u64; root 0: an inline leaf page follows
	boltBranchPage  = 0x01
	boltLeafPage    = 0x02
	boltFreelistPg  = 0x10
	boltBucketLeaf  = 0x01
	boltMetaOffset  = boltPageHeader
	boltMetaSumAt   = 56 // offset of the checksum inside the meta struct
	boltMagic       = 0xED0CDAED
	boltNoFreelist  = ^uint64(0)
	boltMaxDepth    = 64
)

// checkBoltPages walks every page reachable from the current meta page of the bbolt
// file f, reading with ReadAt into memory, and returns an error for anything bbolt would
// trust and then fault or panic on: a page past the high-water mark or the end of the
// file, a page reached twice or both reached and free, an element or key outside its
// page, keys out of order, a wrong page type. bbolt's own tx.Check does much of this,
// but in a goroutine of its own reading the mmap, where a damaged length faults the
// whole process (found by TestStateStoreDamageNeverCrashes); reading the file here,
// with bounds checks, cannot.
func checkBoltPages(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	w := boltWalk{f: f, fileSize: fi.Size(), seen: make(map[uint64]bool)}
	root, freelist, err := w.readMeta()
	if err != nil {
		return err
	}
	if err := w.tree(root, 0); err != nil {
		return err
	}
	if freelist == boltNoFreelist {
		return nil
	}
	pg, err := w.page(freelist)
	if err != nil {
		return fmt.Errorf("freelist: %w", err)
	}
	if pg[8]&boltFreelistPg == 0 {
		return fmt.Errorf("freelist page %d: flags %#x", freelist, pg[8])
	}
	ne := binary.NativeEndian
	n, ids := uint64(ne.Uint16(pg[10:])), pg[boltPageHeader:]
	if n == 0xFFFF {
		if len(ids) < 8 {
			return errors.New("freelist: short")
		}
		n, ids = ne.Uint64(ids), ids[8:]
	}
	if n > uint64(len(ids)/8) {
		return fmt.Errorf("freelist: %d ids in %d bytes", n, len(ids))
	}
	free := make(map[uint64]bool, n)
	for i := range n {
		id := ne.Uint64(ids[i*8:])
		if id < 2 || id >= w.highWater || w.seen[id] || free[id] {
			return fmt.Errorf("freelist: page %d out of range, in use or freed twice", id)
		}
		free[id] = true
	}
	return nil
}

// boltWalk is checkBoltPages' state.
type boltWalk struct {
	f         *os.File
	fileSize  int64
	pageSize  uint64
	highWater uint64          // the meta page's pgid: pages in use are below it
	seen      map[uint64]bool // pages reached so far, overflow pages included
}

// readMeta picks the meta page bbolt would (the valid one with the higher txid) and
// returns its root page and freelist page.
func (w *boltWalk) readMeta() (root, freelist uint64, err error) {
	ne := binary.NativeEndian
	var best []byte
	var bestTx uint64
	off := int64(0)
	for i := range 2 {
		m := make([]byte, boltMetaOffset+boltMetaSumAt+8)
		if _, err := w.f.ReadAt(m, off); err != nil {
			continue
		}
		m = m[boltMetaOffset:]
		h := fnv.New64a()
		h.Write(m[:boltMetaSumAt])
		if ne.Uint32(m) != boltMagic || ne.Uint64(m[boltMetaSumAt:]) != h.Sum64() {
			if i == 0 {
				return 0, 0, errors.New("meta page 0 unreadable") // bbolt needs it for the page size too
			}
			continue
		}
		if i == 0 {
			w.pageSize = uint64(ne.Uint32(m[8:]))
			if w.pageSize < 1024 || w.pageSize > 1<<16 || w.pageSize&(w.pageSize-1) != 0 {
				return 0, 0, fmt.Errorf("page size %d", w.pageSize)
			}
			off = int64(w.pageSize)
		}
		if tx := ne.Uint64(m[48:]); best == nil || tx > bestTx {
			best, bestTx = m, tx
		}
	}
	if best == nil {
		return 0, 0, errors.New("no valid meta page")
	}
	w.highWater = ne.Uint64(best[40:])
	if w.highWater*w.pageSize > uint64(w.fileSize) {
		return 0, 0, fmt.Errorf("truncated: %d bytes, meta page claims %d", w.fileSize, w.highWater*w.pageSize)
	}
	w.seen[0], w.seen[1] = true, true
	return ne.Uint64(best[16:]), ne.Uint64(best[32:]), nil
}

// page reads page id with its overflow pages, marking them seen.
func (w *boltWalk) page(id uint64) ([]byte, error) {
	if id < 2 || id >= w.highWater {
		return nil, fmt.Errorf("page %d outside 2..%d", id, w.highWater)
	}
	hdr := make([]byte, boltPageHeader)
	if _, err := w.f.ReadAt(hdr, int64(id*w.pageSize)); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	ne := binary.NativeEndian
	if got := ne.Uint64(hdr); got != id {
		return nil, fmt.Errorf("page %d: header says %d", id, got)
	}
	over := uint64(ne.Uint32(hdr[12:]))
	if id+over >= w.highWater {
		return nil, fmt.Errorf("page %d: %d overflow pages past the high-water mark", id, over)
	}
	for p := id; p <= id+over; p++ {
		if w.seen[p] {
			return nil, fmt.Errorf("page %d reached twice", p)
		}
		w.seen[p] = true
	}
	pg := make([]byte, (over+1)*w.pageSize)
	if _, err := w.f.ReadAt(pg, int64(id*w.pageSize)); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	return pg, nil
}

// tree checks the B+tree rooted at page id.
func (w *boltWalk) tree(id uint64, depth int) error {
	if depth > boltMaxDepth {
		return errors.New("tree too deep")
	}
	pg, err := w.page(id)
	if err != nil {
		return err
	}
	if pg[8]&boltLeafPage != 0 {
		return w.leaf(pg, depth)
	}
	if pg[8]&boltBranchPage == 0 {
		return fmt.Errorf("page %d: flags %#x, want branch or leaf", id, pg[8])
	}
	ne := binary.NativeEndian
	var prev []byte
	for i := range int(ne.Uint16(pg[10:])) {
		e := boltPageHeader + i*boltElement
		if e+boltElement > len(pg) {
			return fmt.Errorf("page %d: element %d outside the page", id, i)
		}
		k, err := boltSlice(pg, e, ne.Uint32(pg[e:]), ne.Uint32(pg[e+4:]))
		if err != nil {
			return fmt.Errorf("page %d: element %d: %w", id, i, err)
		}
		if i > 0 && bytes.Compare(prev, k) >= 0 {
			return fmt.Errorf("page %d: keys out of order", id)
		}
		prev = k
		if err := w.tree(ne.Uint64(pg[e+8:]), depth+1); err != nil {
			return err
		}
	}
	return nil
}

// leaf checks a leaf page (a whole page, or a bucket's inline page), and the buckets
// it holds.
func (w *boltWalk) leaf(pg []byte, depth int) error {
	if len(pg) < boltPageHeader || pg[8]&boltLeafPage == 0 {
		return errors.New("leaf: bad header")
	}
	ne := binary.NativeEndian
	var prev []byte
	for i := range int(ne.Uint16(pg[10:])) {
		e := boltPageHeader + i*boltElement
		if e+boltElement > len(pg) {
			return fmt.Errorf("leaf: element %d outside the page", i)
		}
		ksize, vsize := ne.Uint32(pg[e+8:]), ne.Uint32(pg[e+12:])
		kv, err := boltSlice(pg, e, ne.Uint32(pg[e+4:]), ksize+vsize)
		if err != nil || ksize+vsize < ksize {
			return fmt.Errorf("leaf: element %d: key and value outside the page", i)
		}
		k, v := kv[:ksize], kv[ksize:]
		if i > 0 && bytes.Compare(prev, k) >= 0 {
			return errors.New("leaf: keys out of order")
		}
		prev = k
		if ne.Uint32(pg[e:])&boltBucketLeaf == 0 {
			continue
		}
		if len(v) < boltBucketValue {
			return fmt.Errorf("leaf: bucket %q: short value", k)
		}
		if root := ne.Uint64(v); root != 0 {
			err = w.tree(root, depth+1)
		} else {
			err = w.leaf(v[boltBucketValue:], depth+1)
		}
		if err != nil {
			return fmt.Errorf("bucket %q: %w", k, err)
		}
	}
	return nil
}

// boltSlice returns pg[e+pos : e+pos+n], or an error when that is outside pg.
func boltSlice(pg []byte, e int, pos, n uint32) ([]byte, error) {
	start := uint64(e) + uint64(pos)
	end := start + uint64(n)
	if end > uint64(len(pg)) {
		return nil, errors.New("outside the page")
	}
	return pg[start:end], nil
}

// setAsideStateFile renames path to path.set-aside-<UTC stamp>[-N], never replacing an
// existing file, and returns the new path. The hard link is the no-clobber rename; where
// links are not supported it falls back to check-then-rename.
func setAsideStateFile(path string, now time.Time) (string, error) {
	base := path + stateSetAside + now.UTC().Format(stateStampForm)
	for n := 1; n <= 1000; n++ {
		dst := base
		if n > 1 {
			dst = base + "-" + strconv.Itoa(n)
		}
		err := os.Link(path, dst)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err == nil {
			err = os.Remove(path)
		} else if _, statErr := os.Lstat(dst); statErr == nil {
			continue
		} else {
			err = os.Rename(path, dst)
		}
		if err != nil {
			return "", fmt.Errorf("state store: set aside %s: %w", path, err)
		}
		syncDir(filepath.Dir(path))
		return dst, nil
	}
	return "", fmt.Errorf("state store: set aside %s: too many set-aside files for %s", path, base)
}

// syncDir makes a rename in dir durable where the platform allows it; best effort.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// load returns every worker's saved blob by name, and the fleet blob (nil when none saved yet).
// The returned slices are copies, owned by the caller.
func (s *stateStore) load() (workers map[string][]byte, fleet []byte, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		meta, wb := tx.Bucket(stateBucketMeta), tx.Bucket(stateBucketWorkers)
		if meta == nil || wb == nil {
			return errors.New("buckets missing")
		}
		workers = make(map[string][]byte, wb.Stats().KeyN+1)
		if v := meta.Get(stateKeyAnonWorker); v != nil {
			workers[""] = bytes.Clone(v)
		}
		fleet = bytes.Clone(meta.Get(stateKeyFleet))
		return wb.ForEach(func(k, v []byte) error {
			if v == nil {
				return fmt.Errorf("worker %q: nested bucket", k)
			}
			workers[string(k)] = bytes.Clone(v)
			return nil
		})
	})
	if err != nil {
		return nil, nil, fmt.Errorf("state store: load %s: %w", s.path, err)
	}
	return workers, fleet, nil
}

// save replaces everything saved with workers and fleet, in one transaction: a crash leaves either the old or the new state.
// A nil fleet removes the saved fleet blob. The limits (stateMaxWorkers, stateMaxBlob) are
// checked before anything is written.
func (s *stateStore) save(workers map[string][]byte, fleet []byte) error {
	if len(workers) > stateMaxWorkers {
		return fmt.Errorf("state store: save: %d workers, limit %d", len(workers), stateMaxWorkers)
	}
	if len(fleet) > stateMaxBlob {
		return fmt.Errorf("state store: save: fleet blob of %d bytes, limit %d", len(fleet), stateMaxBlob)
	}
	names := make([]string, 0, len(workers))
	for name, blob := range workers {
		if len(blob) > stateMaxBlob {
			return fmt.Errorf("state store: save: worker %q: blob of %d bytes, limit %d", name, len(blob), stateMaxBlob)
		}
		if name != "" {
			names = append(names, name)
		}
	}
	// Sorted keys are appended at the right edge of the tree, so pages fill completely
	// (FillPercent 1) and the insert never splits a page twice.
	slices.Sort(names)

	err := s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(stateBucketMeta)
		if meta == nil {
			return errors.New("meta bucket missing")
		}
		if err := putOrDelete(meta, stateKeyFleet, fleet); err != nil {
			return err
		}
		anon, ok := workers[""]
		if !ok {
			anon = nil
		} else if anon == nil {
			anon = []byte{}
		}
		if err := putOrDelete(meta, stateKeyAnonWorker, anon); err != nil {
			return err
		}
		if err := tx.DeleteBucket(stateBucketWorkers); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return err
		}
		wb, err := tx.CreateBucket(stateBucketWorkers)
		if err != nil {
			return err
		}
		wb.FillPercent = 1
		for _, name := range names {
			blob := workers[name]
			if blob == nil {
				blob = []byte{} // bbolt stores nil as empty anyway; say so
			}
			if err := wb.Put([]byte(name), blob); err != nil {
				return fmt.Errorf("worker %q: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("state store: save %s: %w", s.path, err)
	}
	return nil
}

// putOrDelete puts v under k, or deletes k when v is nil.
func putOrDelete(b *bolt.Bucket, k, v []byte) error {
	if v == nil {
		return b.Delete(k)
	}
	return b.Put(k, v)
}

// close closes the file.
func (s *stateStore) close() error {
	return s.db.Close()
}
