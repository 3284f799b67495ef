package recorder

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrSpoolFull is returned (wrapped) by the recording methods when the spool
// has reached Options.SpoolMaxBytes and Options.OnFull is "refuse".
var ErrSpoolFull = errors.New("recorder: spool full")

// ErrClosed is returned by the recording methods after Close.
var ErrClosed = errors.New("recorder: closed")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameHeader is the length (4 bytes) and CRC-32C (4 bytes) of a record.
const frameHeader = 8

// maxRecord bounds one record so that a corrupt length cannot make replay
// allocate without limit.
const maxRecord = 64 << 20

// spool is an append-only log split into numbered files. Appends are
// buffered and written by one committer goroutine, then made durable by an
// fdatasync that every record written before it shares (group commit). A
// file is removed once every record in it was released (uploaded).
//
// Each record says what its appender waits for (waitLevel): nothing (a
// decision whose durability a later event of the same request proves),
// written (in the kernel's hands: it survives the process being killed,
// not the machine crashing), or durable (synced). The committer writes as
// soon as a record waits to be written, syncs as soon as one waits to be
// durable, and otherwise writes and syncs what is queued within
// syncInterval: a record nobody waits for is durable within that window.
type spool struct {
	dir       string
	maxBytes  int64
	fileBytes int64

	mu      sync.Mutex
	cond    *sync.Cond
	target  uint64           // file new records go to
	sizes   map[uint64]int64 // bytes per file, queued included
	live    map[uint64]int64 // unreleased records per file
	used    int64            // sum of sizes
	pending []queued         // queued, not yet written
	batch   *commitBatch     // batch the queued records belong to
	want    waitLevel        // the most any queued record waits for
	tick    bool             // syncInterval passed with records unwritten or unsynced
	armed   bool             // timer is set to raise tick
	timer   *time.Timer
	err     error // sticky write or sync failure
	full    bool  // the last append did not fit
	closing bool
	done    chan struct{}

	count int          // records queued since the committer last took them
	syncs atomic.Int64 // group commits made durable
	spare []queued     // a taken queue, emptied, for the next one

	// hook, when set (by tests, before the first record), runs in the
	// committer before each write ("write") and each sync ("sync").
	hook func(phase string)
	// synced, when set, runs in the committer after each sync.
	synced func()

	// owned by the committer
	unsynced []*commitBatch // written, not yet synced
	f        *os.File
	fNo      uint64
	fOff     int64 // where the next write goes in f
	open     bool
	buf      []byte // framed records of one write

	// Zero-filling ahead of the committer; see extendAhead.
	filled  int64         // f is zero-filled and synced below this offset
	step    int64         // the next fill's size: it doubles up to fillStep
	extDone chan extended // an extension under way, nil when none
	extFrom int64         // where the extension under way starts
}

// extended reports one finished extension.
type extended struct {
	end int64
	err error
}

// queued is one record waiting for the committer. A record of a hash
// chain is completed by the committer, in the order records are queued:
// its line (payload[lineAt:]) ends with `"prev":"<64 hex digits>"}`, the
// digits standing in for the hash of the chain's previous line, which the
// committer writes there before it frames the record and hashes the line
// into the chain. Appenders thus never wait for each other's hashing.
type queued struct {
	fileNo  uint64
	payload []byte
	chain   *chain // nil: the payload is complete
	lineAt  int
}

// chain is the head of one segment's hash chain: the SHA-256 of its last
// line queued (the genesis before the first). Once its segment's records
// can be queued it belongs to the committer of the segment's spool.
type chain struct{ sum [sha256.Size]byte }

// prevDigits is the length of the hex hash that ends a chained line,
// followed by `"}`.
const prevDigits = 2 * sha256.Size

// link writes c's head into line as its prev and makes line the head.
func (c *chain) link(line []byte) {
	hex.Encode(line[len(line)-2-prevDigits:len(line)-2], c.sum[:])
	c.sum = sha256.Sum256(line)
}

// commitBatch is the records one committer pass writes: written is closed
// once they are written (werr nil) or failed, done once they are durable
// (err nil) or failed.
type commitBatch struct {
	written chan struct{}
	done    chan struct{}
	werr    error // set before written is closed
	err     error // set before done is closed
}

func newBatch() *commitBatch {
	return &commitBatch{written: make(chan struct{}), done: make(chan struct{})}
}

// waitLevel is what an appender waits for: see spool.
type waitLevel uint8

const (
	waitNone waitLevel = iota
	waitWritten
	waitDurable
)

// syncInterval bounds how long a record nobody waits for stays unwritten
// or unsynced: the window a machine crash can lose (a process crash loses
// only what was not yet written).
const syncInterval = 10 * time.Millisecond

// spoolRecord is one record found by replay.
type spoolRecord struct {
	fileNo  uint64
	offset  int64 // of the payload in the file
	payload []byte
}

func walName(n uint64) string { return fmt.Sprintf("wal-%016d.log", n) }

// openSpool opens or creates the spool in dir. Each record already in it
// is passed to replay, in order; a record for which replay returns false is
// released at once. A file left without records is removed.
func openSpool(dir string, maxBytes, fileBytes int64, replay func(spoolRecord) bool) (*spool, error) {
	return openSpoolNotifying(dir, maxBytes, fileBytes, replay, nil)
}

// openSpoolNotifying is openSpool calling synced, when not nil, in the
// committer after each sync.
func openSpoolNotifying(dir string, maxBytes, fileBytes int64, replay func(spoolRecord) bool, synced func()) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("recorder: spool %s: %w", dir, err)
	}
	s := &spool{
		dir:       dir,
		maxBytes:  maxBytes,
		fileBytes: fileBytes,
		synced:    synced,
		sizes:     map[uint64]int64{},
		live:      map[uint64]int64{},
		done:      make(chan struct{}),
	}
	s.cond = sync.NewCond(&s.mu)
	s.timer = time.AfterFunc(time.Hour, s.onTick)
	s.timer.Stop()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("recorder: spool %s: %w", dir, err)
	}
	var nums []uint64
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "wal-") || !strings.HasSuffix(name, ".log") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, "wal-"), ".log"), 10, 64)
		if err != nil {
			continue
		}
		nums = append(nums, n)
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	for _, n := range nums {
		var kept int64
		size, err := readWAL(filepath.Join(dir, walName(n)), func(off int64, p []byte) {
			if replay(spoolRecord{fileNo: n, offset: off, payload: p}) {
				kept++
			}
		})
		if err != nil {
			return nil, err
		}
		s.target = n
		if kept == 0 {
			if err := os.Remove(filepath.Join(dir, walName(n))); err != nil {
				return nil, fmt.Errorf("recorder: spool: %w", err)
			}
			continue
		}
		s.sizes[n] = size
		s.live[n] = kept
		s.used += size
	}
	s.target++
	go s.commitLoop()
	return s, nil
}

// readWAL passes the intact records of one file to fn with their payload
// offsets. A torn or corrupt tail (a crash in the middle of a write that
// was never acknowledged) is cut off.
func readWAL(path string, fn func(off int64, payload []byte)) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("recorder: spool: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var good int64
	var hdr [frameHeader]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			break
		}
		n := binary.LittleEndian.Uint32(hdr[0:4])
		sum := binary.LittleEndian.Uint32(hdr[4:8])
		if n == 0 || n > maxRecord {
			break
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(r, p); err != nil {
			break
		}
		if crc32.Checksum(p, castagnoli) != sum {
			break
		}
		fn(good+frameHeader, p)
		good += frameHeader + int64(n)
	}
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("recorder: spool: %w", err)
	}
	if st.Size() != good {
		if err := f.Truncate(good); err != nil {
			return 0, fmt.Errorf("recorder: spool: truncate torn tail of %s: %w", filepath.Base(path), err)
		}
		if err := f.Sync(); err != nil {
			return 0, fmt.Errorf("recorder: spool: %w", err)
		}
	}
	return good, nil
}

// enqueue queues one record that its caller waits on as wait says, and
// returns the batch to wait on and the file the record goes to. With c set,
// the record is a line of that chain (see queued), and payload belongs to
// the spool until the batch is written. It fails with ErrSpoolFull when the
// record does not fit in the bound, unless force is set (close events,
// which are small and needed to seal a segment).
func (s *spool) enqueue(payload []byte, lineAt int, c *chain, force bool, wait waitLevel) (*commitBatch, uint64, int64, error) {
	size := int64(frameHeader + len(payload))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, 0, 0, ErrClosed
	}
	if s.err != nil {
		return nil, 0, 0, fmt.Errorf("recorder: spool: %w", s.err)
	}
	if !force && s.used+size > s.maxBytes {
		s.full = true
		return nil, 0, 0, fmt.Errorf("%w (%d of %d bytes used)", ErrSpoolFull, s.used, s.maxBytes)
	}
	s.full = false
	if s.sizes[s.target] > 0 && s.sizes[s.target]+size > s.fileBytes {
		s.target++
	}
	if s.pending == nil {
		s.pending, s.spare = s.spare, nil
	}
	s.pending = append(s.pending, queued{fileNo: s.target, payload: payload, chain: c, lineAt: lineAt})
	offset := s.sizes[s.target] + frameHeader
	s.sizes[s.target] += size
	s.live[s.target]++
	s.used += size
	s.count++
	if s.batch == nil {
		s.batch = newBatch()
	}
	if wait > s.want {
		if s.want == waitNone {
			s.cond.Signal()
		}
		s.want = wait
	}
	if wait == waitNone {
		s.armLocked()
	}
	return s.batch, s.target, offset, nil
}

// armLocked makes sure the committer passes within syncInterval; s.mu is
// held.
func (s *spool) armLocked() {
	if !s.armed && !s.closing {
		s.armed = true
		s.timer.Reset(syncInterval)
	}
}

func (s *spool) onTick() {
	s.mu.Lock()
	s.armed = false
	s.tick = true
	s.cond.Signal()
	s.mu.Unlock()
}

// maxKeptQueue bounds the queue the committer keeps for reuse.
const maxKeptQueue = 16 << 10

// readAt reads n bytes at off of spool file fileNo; files holds open files
// to reuse and close afterwards.
func (s *spool) readAt(files map[uint64]*os.File, fileNo uint64, off int64, n int) ([]byte, error) {
	f := files[fileNo]
	if f == nil {
		var err error
		if f, err = os.Open(filepath.Join(s.dir, walName(fileNo))); err != nil {
			return nil, fmt.Errorf("recorder: spool: %w", err)
		}
		files[fileNo] = f
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("recorder: spool: read %s at %d: %w", walName(fileNo), off, err)
	}
	return b, nil
}

// release marks one durable record of file n as no longer needed; a file
// without live records that no longer receives appends is removed.
func (s *spool) release(n uint64, count int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live[n] -= count
	if s.live[n] > 0 {
		return
	}
	if n == s.target {
		if s.sizes[n] == 0 || s.closing {
			return
		}
		// Drained: start a new file so that this one can go.
		s.target++
	}
	if err := os.Remove(filepath.Join(s.dir, walName(n))); err != nil && !errors.Is(err, os.ErrNotExist) {
		if s.err == nil {
			s.err = err
		}
		return
	}
	s.used -= s.sizes[n]
	if s.used < s.maxBytes-s.maxBytes/10 {
		s.full = false
	}
	delete(s.sizes, n)
	delete(s.live, n)
}

// usedBytes is the spool's size on disk, queued records included.
func (s *spool) usedBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}

// healthy reports a sticky write or sync failure.
func (s *spool) healthy() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return fmt.Errorf("recorder: spool: %w", s.err)
	}
	if s.full {
		return fmt.Errorf("%w (%d of %d bytes used)", ErrSpoolFull, s.used, s.maxBytes)
	}
	return nil
}

// commitWait and commitYields: see commitLoop.
const (
	commitWait   = 500 * time.Microsecond
	commitYields = 64
)

func (s *spool) commitLoop() {
	defer close(s.done)
	for {
		s.mu.Lock()
		for !s.closing && s.want == waitNone && !s.tick {
			s.cond.Wait()
		}
		// Group commit that adapts to load: while other goroutines are
		// runnable (requests on their way to the spool), yield to them
		// and let the batch grow; commit once a yield brought nothing new
		// or commitWait has passed. Each fdatasync costs tens of
		// microseconds of CPU however little it carries, so under load
		// fewer, larger syncs leave more CPU for Checks; an idle server
		// (nothing else runnable) commits at once.
		if !s.closing && s.want != waitNone {
			start := time.Now()
			for range commitYields {
				n := s.count
				s.mu.Unlock()
				runtime.Gosched()
				s.mu.Lock()
				if s.count == n || s.closing || time.Since(start) > commitWait {
					break
				}
			}
		}
		s.count = 0
		work, b, want, tick, closing := s.pending, s.batch, s.want, s.tick, s.closing
		s.pending, s.batch, s.want, s.tick = nil, nil, waitNone, false
		failed := s.err
		s.mu.Unlock()

		if b != nil {
			err := failed
			if err == nil {
				if s.hook != nil {
					s.hook("write")
				}
				err = s.write(work)
			}
			if cap(work) <= maxKeptQueue {
				clear(work)
				s.mu.Lock()
				s.spare = work[:0]
				s.mu.Unlock()
			}
			if err != nil {
				s.fail(err)
				b.werr = fmt.Errorf("recorder: spool: %w", err)
				b.err = b.werr
				close(b.written)
				close(b.done)
			} else {
				close(b.written)
				s.unsynced = append(s.unsynced, b)
			}
		}
		if len(s.unsynced) > 0 && (want == waitDurable || tick || closing) {
			s.syncWritten()
		}
		if closing {
			s.mu.Lock()
			left := len(s.pending) > 0
			s.mu.Unlock()
			if left {
				continue
			}
			if s.open {
				if err := s.closeFile(); err != nil {
					s.fail(err)
				}
			}
			return
		}
		if len(s.unsynced) > 0 {
			s.mu.Lock()
			s.armLocked()
			s.mu.Unlock()
		}
	}
}

// syncWritten makes every written batch durable: one fdatasync of the file
// written to covers them all (a file written to before it was synced when
// it was closed).
func (s *spool) syncWritten() {
	var err error
	if s.open {
		if s.hook != nil {
			s.hook("sync")
		}
		if err = datasync(s.f); err == nil {
			s.syncs.Add(1)
		} else {
			s.fail(err)
			err = fmt.Errorf("recorder: spool: %w", err)
		}
	}
	for _, b := range s.unsynced {
		b.err = err
		close(b.done)
	}
	clear(s.unsynced)
	s.unsynced = s.unsynced[:0]
	if s.synced != nil {
		s.synced()
	}
}

// fail records a sticky write or sync failure.
func (s *spool) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}

// write completes, frames and appends the queued records to their files,
// in writes of at most writeBuffer bytes (a larger record alone); a file
// it leaves is synced as it is closed, the file it writes to last is not.
func (s *spool) write(work []queued) error {
	if s.buf == nil {
		s.buf = make([]byte, 0, writeBuffer)
	}
	s.buf = s.buf[:0]
	fileNo := work[0].fileNo
	for i := range work {
		q := &work[i]
		if q.fileNo != fileNo || (len(s.buf) > 0 && len(s.buf)+frameHeader+len(q.payload) > writeBuffer) {
			if err := s.writeOut(fileNo); err != nil {
				return err
			}
			fileNo = q.fileNo
		}
		if q.chain != nil {
			q.chain.link(q.payload[q.lineAt:])
		}
		s.buf = binary.LittleEndian.AppendUint32(s.buf, uint32(len(q.payload)))
		s.buf = binary.LittleEndian.AppendUint32(s.buf, crc32.Checksum(q.payload, castagnoli))
		s.buf = append(s.buf, q.payload...)
	}
	err := s.writeOut(fileNo)
	if cap(s.buf) > writeBuffer {
		s.buf = nil // grown for one large record
	}
	return err
}

// writeBuffer is the most write puts in one write(2), but for a record
// larger than that.
const writeBuffer = 1 << 20

// writeOut appends s.buf to spool file fileNo, opening it (and closing the
// file written before) when needed, and empties s.buf.
func (s *spool) writeOut(fileNo uint64) error {
	if len(s.buf) == 0 {
		return nil
	}
	if !s.open || s.fNo != fileNo {
		if s.open {
			if err := s.closeFile(); err != nil {
				return err
			}
		}
		if err := s.openFile(fileNo); err != nil {
			return err
		}
	}
	s.beforeWrite(int64(len(s.buf)))
	if _, err := s.f.WriteAt(s.buf, s.fOff); err != nil {
		return err
	}
	s.fOff += int64(len(s.buf))
	s.buf = s.buf[:0]
	return nil
}

// Spool files are zero-filled a few megabytes ahead of the records, as
// database logs are: overwriting allocated blocks lets fdatasync flush
// data alone, where appending makes every sync commit the file system's
// journal too (the new size): several times slower on a busy machine.
// A background goroutine fills the region ahead while the committer writes
// below it; the committer never writes into a region being filled, and
// zeros never go where records are (each region starts at or after the
// committer's offset when it is handed out). Replay stops at the zeros (a
// zero length ends a file's records) and cuts them off.

// fillStep is how far ahead of the records a file is zero-filled at most;
// a file's first fill is minFill and each next one twice the last.
func (s *spool) fillStep() int64 {
	return max(minFill, min(4<<20, s.fileBytes/4))
}

const minFill = 64 << 10

// openFile creates spool file n for the committer and sets it up as the
// file written to, its first region filled (a rotation is rare; the
// regions after it are filled in the background).
func (s *spool) openFile(n uint64) error {
	f, err := os.OpenFile(filepath.Join(s.dir, walName(n)), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		return err
	}
	s.f, s.fNo, s.fOff, s.filled, s.step, s.open = f, n, 0, 0, minFill, true
	s.extendAhead(0)
	s.waitExtension()
	return nil
}

// beforeWrite makes sure the committer may write [s.fOff, s.fOff+n): it
// waits for an extension that region overlaps, and starts the next one
// when the records come near the end of the filled region.
func (s *spool) beforeWrite(n int64) {
	end := s.fOff + n
	if s.extDone != nil {
		select {
		case r := <-s.extDone:
			s.finishExtension(r)
		default:
			if end > s.extFrom {
				s.waitExtension()
			}
		}
	}
	if s.extDone == nil && end+s.step/2 > s.filled && end < s.fileBytes {
		s.extendAhead(end)
	}
}

// closeFile ends the file written to: its zeros are cut off (only the file
// written to carries any, which keeps the spool within its bound) and it
// is synced.
func (s *spool) closeFile() error {
	s.waitExtension()
	err := s.f.Truncate(s.fOff)
	if err == nil {
		err = s.f.Sync()
	}
	s.f.Close()
	s.open = false
	return err
}

func (s *spool) waitExtension() {
	if s.extDone != nil {
		s.finishExtension(<-s.extDone)
	}
}

func (s *spool) finishExtension(r extended) {
	s.extDone = nil
	if r.err == nil {
		s.filled = r.end
	}
	// A failed fill only costs speed: records are appended past the
	// filled region as to any file.
}

// extendAhead zero-fills a region starting at or after from in the
// background, within the spool's bound (records plus zeros never exceed
// maxBytes on disk).
func (s *spool) extendAhead(from int64) {
	start := max(from, s.filled)
	// Small at first (a short-lived spool writes little), no further than
	// the size at which the file rotates.
	step := min(s.step, s.fileBytes-start)
	s.step = min(2*s.step, s.fillStep())
	s.mu.Lock()
	room := s.maxBytes - s.used - (start - s.fOff)
	s.mu.Unlock()
	if step < 4096 || step > room {
		return
	}
	f, done := s.f, make(chan extended, 1)
	s.extDone, s.extFrom = done, start
	go func() {
		zeros := make([]byte, 256<<10)
		var err error
		for off := start; off < start+step && err == nil; off += int64(len(zeros)) {
			_, err = f.WriteAt(zeros[:min(int64(len(zeros)), start+step-off)], off)
		}
		if err == nil {
			err = datasync(f)
		}
		done <- extended{end: start + step, err: err}
	}()
}

// close stops the committer once everything queued is durable.
func (s *spool) close() {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		<-s.done
		return
	}
	s.closing = true
	s.timer.Stop()
	s.cond.Broadcast()
	s.mu.Unlock()
	<-s.done
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
