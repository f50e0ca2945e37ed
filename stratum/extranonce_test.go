package stratum_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"

	"github.com/hashrelay/hashrelay/stratum"
)

func TestNewLayout(t *testing.T) {
	en1 := []byte{0xf1, 0xad, 0x9a, 0x67}
	for size := 2; size <= stratum.MaxExtranonce2Size; size++ {
		for want := 0; want <= stratum.MaxPrefixSize; want++ {
			t.Run(fmt.Sprintf("size %d want %d", size, want), func(t *testing.T) {
				l, err := stratum.NewLayout(en1, size, want)
				if err != nil {
					t.Fatalf("NewLayout: %v", err)
				}
				// The expected prefix: grow from 1 byte while the wish, the cap and the
				// miner's minimum all allow.
				p := 1
				for p+1 <= want && p+1 <= stratum.MaxPrefixSize && size-(p+1) >= stratum.MinMinerExtranonce2Size {
					p++
				}
				if l.PrefixSize != p {
					t.Errorf("prefix size %d; want %d", l.PrefixSize, p)
				}
				if l.PrefixSize < 1 || l.MinerExtranonce2Size() < 1 || l.PrefixSize+l.MinerExtranonce2Size() != size {
					t.Errorf("prefix %d + miner %d; want both >= 1, summing to %d", l.PrefixSize, l.MinerExtranonce2Size(), size)
				}
				if size-1 >= stratum.MinMinerExtranonce2Size && l.MinerExtranonce2Size() < stratum.MinMinerExtranonce2Size {
					t.Errorf("miner keeps %d bytes of %d; want at least %d when the pool allows", l.MinerExtranonce2Size(), size, stratum.MinMinerExtranonce2Size)
				}
				if l.PrefixSize > max(want, 1) {
					t.Errorf("prefix %d exceeds the wish %d", l.PrefixSize, want)
				}
				if !bytes.Equal(l.Extranonce1, en1) || l.Extranonce2Size != size {
					t.Errorf("layout keeps extranonce1 %x size %d; want %x %d", l.Extranonce1, l.Extranonce2Size, en1, size)
				}
			})
		}
	}

	// Concrete cases from STRATUM.md §8: 8 bytes upstream, 2-byte prefix (vector 881423);
	// 4 bytes upstream leaves 3 with a 1-byte prefix.
	for _, c := range []struct{ size, want, prefix, miner int }{
		{8, 2, 2, 6}, {8, 8, 4, 4}, {4, 2, 1, 3}, {2, 2, 1, 1}, {16, 8, 8, 8}, {16, -3, 1, 15}, {5, 8, 1, 4},
	} {
		l, err := stratum.NewLayout(nil, c.size, c.want)
		if err != nil || l.PrefixSize != c.prefix || l.MinerExtranonce2Size() != c.miner {
			t.Errorf("NewLayout(size %d, want %d) = prefix %d miner %d, %v; want %d %d", c.size, c.want, l.PrefixSize, l.MinerExtranonce2Size(), err, c.prefix, c.miner)
		}
	}

	for _, c := range []struct {
		en1  []byte
		size int
	}{{en1, 1}, {en1, 0}, {en1, -1}, {en1, stratum.MaxExtranonce2Size + 1}, {make([]byte, stratum.MaxExtranonce1Size+1), 8}} {
		if _, err := stratum.NewLayout(c.en1, c.size, 2); !errors.Is(err, stratum.ErrExtranonceSpace) {
			t.Errorf("NewLayout(%d-byte en1, size %d) error %v; want ErrExtranonceSpace", len(c.en1), c.size, err)
		}
	}
	if _, err := stratum.NewLayout(nil, 8, 2); err != nil {
		t.Errorf("NewLayout with p2pool's empty extranonce1: %v", err)
	}
}

func TestLayoutPrefixes(t *testing.T) {
	for _, c := range []struct {
		prefix int
		want   uint64
	}{{1, 256}, {2, 65536}, {3, 1 << 24}, {4, 1 << 32}, {7, 1 << 56}, {8, 1<<64 - 1}} {
		l := stratum.Layout{Extranonce2Size: 16, PrefixSize: c.prefix}
		if got := l.Prefixes(); got != c.want {
			t.Errorf("Prefixes() with a %d-byte prefix = %d; want %d", c.prefix, got, c.want)
		}
	}

	f := func(size int, n uint64, want string) {
		t.Helper()
		l := stratum.Layout{Extranonce2Size: 16, PrefixSize: size}
		if got := hex.EncodeToString(l.AppendPrefix(nil, n)); got != want {
			t.Errorf("AppendPrefix(size %d, %#x) = %s; want %s", size, n, got, want)
		}
		if got := string(l.AppendPrefix([]byte("ab"), n)); got != "ab"+string(mustHex(t, want)) {
			t.Errorf("AppendPrefix to a non-empty dst = %x; want 6162%s", got, want)
		}
	}
	f(1, 0, "00")
	f(1, 0xb6, "b6")
	f(2, 0xb660, "b660") // big-endian: vector 881423's prefix
	f(2, 1, "0001")
	f(3, 0x010203, "010203")
	f(4, 0xdeadbeef, "deadbeef")
	f(8, 0x0102030405060708, "0102030405060708")

	// Distinct numbers give distinct prefixes: all of them for 1 and 2 bytes.
	for _, size := range []int{1, 2} {
		l := stratum.Layout{Extranonce2Size: 8, PrefixSize: size}
		seen := make(map[string]uint64, l.Prefixes())
		for n := uint64(0); n < l.Prefixes(); n++ {
			p := string(l.AppendPrefix(nil, n))
			if len(p) != size {
				t.Fatalf("prefix %d is %d bytes; want %d", n, len(p), size)
			}
			if m, dup := seen[p]; dup {
				t.Fatalf("prefixes %d and %d are both %x", m, n, p)
			}
			seen[p] = n
		}
	}
}

// TestLayoutSplitJoin: the upstream extranonce2 built from a prefix and a miner's
// extranonce2 splits back into the same two.
func TestLayoutSplitJoin(t *testing.T) {
	en1 := []byte{0xf1, 0xad, 0x9a, 0x67}
	for size := 2; size <= stratum.MaxExtranonce2Size; size++ {
		l, err := stratum.NewLayout(en1, size, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []uint64{0, 1, l.Prefixes() - 1, 0x5a5a5a5a5a5a5a5a % l.Prefixes()} {
			prefix := l.AppendPrefix(nil, n)
			miner := make([]byte, l.MinerExtranonce2Size())
			for i := range miner {
				miner[i] = byte(0x10*size + i)
			}
			up := l.AppendUpstreamExtranonce2(nil, prefix, []byte(hex.EncodeToString(miner)))
			if want := hex.EncodeToString(prefix) + hex.EncodeToString(miner); string(up) != want {
				t.Errorf("size %d: upstream extranonce2 %s; want %s", size, up, want)
			}
			raw := mustHex(t, string(up))
			gotPrefix, gotMiner, err := l.SplitUpstreamExtranonce2(raw)
			if err != nil || !bytes.Equal(gotPrefix, prefix) || !bytes.Equal(gotMiner, miner) {
				t.Errorf("size %d: split %x = %x, %x, %v; want %x, %x", size, raw, gotPrefix, gotMiner, err, prefix, miner)
			}
			if got := l.AppendSplitExtranonce1(nil, prefix); !bytes.Equal(got, append(bytes.Clone(en1), prefix...)) {
				t.Errorf("size %d: split extranonce1 %x; want %x || %x", size, got, en1, prefix)
			}
		}
		for _, bad := range [][]byte{nil, make([]byte, size-1), make([]byte, size+1)} {
			if _, _, err := l.SplitUpstreamExtranonce2(bad); !errors.Is(err, stratum.ErrExtranonceSpace) {
				t.Errorf("size %d: split of %d bytes: %v; want ErrExtranonceSpace", size, len(bad), err)
			}
		}
	}
}

// TestLayoutFoldJob: the folded job carries coinb1 || upstream extranonce1 in a slice
// of its own, never written into the original's spare capacity, and hashes the same
// shares as the split form.
func TestLayoutFoldJob(t *testing.T) {
	base := encodeJob(t, false)
	orig := *base
	spare := make([]byte, len(base.Coinb1), len(base.Coinb1)+64) // room to alias into
	copy(spare, base.Coinb1)
	orig.Coinb1 = spare
	before := bytes.Clone(spare[:cap(spare)])

	l1, _ := stratum.NewLayout([]byte{0x11, 0x11, 0x11, 0x11}, 8, 2)
	l2, _ := stratum.NewLayout([]byte{0x22, 0x22, 0x22, 0x22, 0x22}, 8, 2)
	f1 := l1.FoldJob(&orig)
	f2 := l2.FoldJob(&orig)
	if !bytes.Equal(spare[:cap(spare)], before) || len(orig.Coinb1) != len(base.Coinb1) {
		t.Errorf("FoldJob wrote into the original coinb1 or its spare capacity")
	}
	if want := append(bytes.Clone(base.Coinb1), 0x11, 0x11, 0x11, 0x11); !bytes.Equal(f1.Coinb1, want) {
		t.Errorf("first fold coinb1 = %x; want %x (a later fold must not overwrite it)", f1.Coinb1, want)
	}
	if want := append(bytes.Clone(base.Coinb1), 0x22, 0x22, 0x22, 0x22, 0x22); !bytes.Equal(f2.Coinb1, want) {
		t.Errorf("second fold coinb1 = %x; want %x", f2.Coinb1, want)
	}
	if f1 == &orig || f1.ID != orig.ID || f1.PrevHash != orig.PrevHash || !bytes.Equal(f1.Coinb2, orig.Coinb2) ||
		f1.Version != orig.Version || f1.NBits != orig.NBits || f1.NTime != orig.NTime || f1.NetworkTarget != orig.NetworkTarget {
		t.Errorf("folded job %+v; want the original's fields but coinb1", f1)
	}

	// The same share in both forms hashes the same.
	prefix := l1.AppendPrefix(nil, 0xb660)
	all := easiest(t)
	s := submitFor(orig.ID, "0000000000a1", orig.NTime, 42)
	var c stratum.Checker
	split := c.Check(&orig, s, &stratum.CheckParams{Extranonce1: l1.AppendSplitExtranonce1(nil, prefix), Extranonce2Size: l1.MinerExtranonce2Size(), ShareTarget: &all})
	folded := c.Check(f1, s, &stratum.CheckParams{Extranonce1: prefix, Extranonce2Size: l1.MinerExtranonce2Size(), ShareTarget: &all})
	if split.Verdict != stratum.VerdictAccepted || folded.Verdict != stratum.VerdictAccepted || split.Hash != folded.Hash {
		t.Errorf("split form %v %v, folded form %v %v; want the same accepted hash", split.Verdict, split.Hash, folded.Verdict, folded.Hash)
	}
}
