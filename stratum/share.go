package stratum

// Submit is a decoded mining.submit. Its slices point into the Decoder and stay valid
// until the Decoder's next Decode.
type Submit struct {
	Worker []byte
	JobID  []byte
	// Extranonce2 is the hex text as sent; the check decodes it.
	Extranonce2 []byte
	NTime       uint32
	Nonce       uint32
	// VersionBits is the 6th param (BIP 310); HasVersionBits tells whether it was sent.
	VersionBits    uint32
	HasVersionBits bool
}

// ShareKey identifies a share within one job of one session, for duplicate
// detection: extranonce2, ntime, nonce and the version the header was hashed with
// (so the rolled bits count, and a 5-param share never collides with a 6-param one
// that hashes a different header). It is comparable.
type ShareKey struct {
	Extranonce2    [MaxExtranonce2Size]byte
	Extranonce2Len uint8
	NTime          uint32
	Nonce          uint32
	Version        uint32
}

// CheckParams is what a session knows about the share besides the job and the submit.
type CheckParams struct {
	// Extranonce1 is the session's extranonce1 (raw bytes).
	Extranonce1 []byte
	// Extranonce2Size is the exact extranonce2 length the session was given.
	Extranonce2Size int
	// VersionMask is the negotiated version-rolling mask; 0 when none.
	VersionMask uint32
	// ShareTarget is the target in force when the job was sent to this session;
	// required (JobWindow.Check sets it).
	ShareTarget *Target
	// UpstreamTarget, when set, is a second target to report on (the pool's).
	UpstreamTarget *Target
}

// Result is the outcome of a share check.
type Result struct {
	Verdict Verdict
	// Key identifies the share for duplicate detection (set once extranonce2 decoded).
	Key ShareKey
	// Version is the header version the share was hashed with.
	Version uint32
	// Hash is the header's sha256d (set once hashed).
	Hash Hash
	// Difficulty is the share difficulty diff1/H (set once hashed).
	Difficulty float64
	// MeetsUpstream reports that the hash meets CheckParams.UpstreamTarget.
	MeetsUpstream bool
	// Block reports that the hash meets the job's network target.
	Block bool
}

// Checker checks shares with per-connection scratch and allocates nothing once its
// coinbase buffer has grown. It is not safe for concurrent use.
type Checker struct {
	coinbase []byte
	header   Header
}

// Check validates s against job j: extranonce2 length, ntime window, version bits
// inside the mask (BIP 310: bits outside it are rejected, never masked off), then
// builds the coinbase, folds the merkle branch, writes the header, double-hashes and
// compares with the share target. It does not look for duplicates (JobWindow does).
func (c *Checker) Check(j *Job, s *Submit, p *CheckParams) Result {
	var r Result
	var en2 [MaxExtranonce2Size]byte
	n, ok := decodeHex(en2[:], s.Extranonce2)
	if !ok {
		if len(s.Extranonce2)%2 == 0 && len(s.Extranonce2) > 2*MaxExtranonce2Size {
			r.Verdict = VerdictExtranonce2Size
		} else {
			r.Verdict = VerdictMalformed
		}
		return r
	}
	if n != p.Extranonce2Size {
		r.Verdict = VerdictExtranonce2Size
		return r
	}
	r.Key = ShareKey{Extranonce2: en2, Extranonce2Len: uint8(n), NTime: s.NTime, Nonce: s.Nonce}
	if s.NTime < j.NTime || uint64(s.NTime) > uint64(j.NTime)+MaxNTimeRoll {
		r.Verdict = VerdictNTimeOutOfRange
		return r
	}
	r.Version = j.Version
	if s.HasVersionBits {
		if s.VersionBits&^p.VersionMask != 0 {
			r.Verdict = VerdictVersionBits
			return r
		}
		r.Version = j.Version&^p.VersionMask | s.VersionBits&p.VersionMask
	}
	r.Key.Version = r.Version

	r.Hash = c.hash(j, p.Extranonce1, en2[:n], r.Version, s.NTime, s.Nonce)
	r.Difficulty = HashDifficulty(&r.Hash)
	r.Block = j.NetworkTarget.MetBy(&r.Hash)
	if p.UpstreamTarget != nil {
		r.MeetsUpstream = p.UpstreamTarget.MetBy(&r.Hash)
	}
	if p.ShareTarget.MetBy(&r.Hash) {
		r.Verdict = VerdictAccepted
	} else {
		r.Verdict = VerdictLowDifficulty
	}
	return r
}

// Header returns the header of the last share hashed, valid until the next Check.
func (c *Checker) Header() *Header { return &c.header }

// hash builds the coinbase, folds the branch, fills c.header and returns its sha256d.
func (c *Checker) hash(j *Job, en1, en2 []byte, version, ntime, nonce uint32) Hash {
	cb := append(c.coinbase[:0], j.Coinb1...)
	cb = append(cb, en1...)
	cb = append(cb, en2...)
	cb = append(cb, j.Coinb2...)
	c.coinbase = cb
	root := MerkleRoot(DoubleSHA256(cb), j.Branch)
	c.header.Set(version, &j.PrevHash, &root, ntime, j.NBits, nonce)
	return c.header.Hash()
}

// Coinbase returns the coinbase of the last share hashed, valid until the next Check.
func (c *Checker) Coinbase() []byte { return c.coinbase }
