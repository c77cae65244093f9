package dockerdriver

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/docker/docker/pkg/stdcopy"
)

// FuzzDemuxReader feeds arbitrary bytes to the log demultiplexer, read in
// chunks of every size. It never panics or stalls, never yields more than
// it read, and yields exactly the payloads of the stream's frames up to
// the first malformed one, which ends it with an error: a cut header or
// payload with io.ErrUnexpectedEOF, a daemon error frame or an unknown
// stream type with an error of its own. Where the frames claim sane sizes,
// the Docker client's stdcopy.StdCopy agrees on every complete frame.
func FuzzDemuxReader(f *testing.F) {
	var valid []byte
	valid = append(valid, frame(streamStdout, "out 1\n")...)
	valid = append(valid, frame(streamStderr, "err 1\n")...)
	valid = append(valid, frame(streamStdout, "")...)
	valid = append(valid, frame(streamStdin, "in\n")...)
	f.Add(valid, uint8(0))
	f.Add(valid, uint8(3))
	f.Add(valid[:5], uint8(1))                                            // cut inside a header
	f.Add(valid[:11], uint8(2))                                           // cut inside a payload
	f.Add(frame(streamSystem, "daemon error"), uint8(7))                  // an error frame
	f.Add(frame(9, "bad stream"), uint8(0))                               // unknown stream type
	f.Add([]byte{1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 'x'}, uint8(4))      // 4 GiB claimed
	f.Add([]byte{3, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 'x', 'y'}, uint8(4)) // huge error frame
	f.Add(bytes.Repeat(frame(streamStdout, ""), 100), uint8(1))           // only empty frames

	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		size := int(chunk)%17 + 1
		r := &demuxReader{r: bytes.NewReader(data)}
		var got bytes.Buffer
		buf := make([]byte, size)
		var err error
		for {
			var n int
			n, err = r.Read(buf)
			if n < 0 || n > len(buf) {
				t.Fatalf("Read returned %d for a buffer of %d", n, len(buf))
			}
			got.Write(buf[:n])
			if err != nil {
				break
			}
			if n == 0 {
				t.Fatalf("Read returned 0, nil: no progress")
			}
		}
		if got.Len() > len(data) {
			t.Fatalf("yielded %d bytes from %d bytes of input", got.Len(), len(data))
		}

		want, complete, wantErr, sane := demuxReference(data)
		if !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("yielded %q, want %q", got.Bytes(), want)
		}
		switch {
		case wantErr == nil && err != io.EOF:
			t.Fatalf("error = %v at the end of a well-formed stream, want io.EOF", err)
		case wantErr != nil && (err == io.EOF || (errors.Is(wantErr, io.ErrUnexpectedEOF) != errors.Is(err, io.ErrUnexpectedEOF))):
			t.Fatalf("error = %v, want one like %v", err, wantErr)
		}
		if !sane {
			return // StdCopy would allocate what the frames claim
		}
		var std bytes.Buffer
		_, serr := stdcopy.StdCopy(&std, &std, bytes.NewReader(data))
		// StdCopy ends a cut stream without an error; it reports a daemon
		// error frame only when the frame is whole.
		cut := wantErr == nil || errors.Is(wantErr, io.ErrUnexpectedEOF)
		if !errors.Is(wantErr, errDaemonFrame) && (serr == nil) != cut {
			t.Fatalf("StdCopy error %v, the reader's %v", serr, err)
		}
		if !bytes.Equal(std.Bytes(), complete) {
			t.Fatalf("StdCopy yielded %q, the reader's complete frames %q", std.Bytes(), complete)
		}
	})
}

var errDaemonFrame = errors.New("daemon error frame")

// demuxReference walks Docker's multiplexed stream: want is every payload
// byte up to the first malformed frame (a cut payload included), complete
// the payloads of the complete stdin, stdout and stderr frames before it,
// err why the stream ended (nil for a clean end), and sane whether no
// frame claims more than 1 MiB.
func demuxReference(data []byte) (want, complete []byte, err error, sane bool) {
	sane = true
	for len(data) > 0 {
		if len(data) < 8 {
			return want, complete, io.ErrUnexpectedEOF, sane
		}
		typ, n := data[0], int64(binary.BigEndian.Uint32(data[4:8]))
		sane = sane && n <= 1<<20
		data = data[8:]
		switch typ {
		case streamStdin, streamStdout, streamStderr:
		case streamSystem:
			return want, complete, errDaemonFrame, sane
		default:
			return want, complete, errBadFrame, sane
		}
		if n > int64(len(data)) {
			return append(want, data...), complete, io.ErrUnexpectedEOF, sane
		}
		want = append(want, data[:n]...)
		complete = append(complete, data[:n]...)
		data = data[n:]
	}
	return want, complete, nil, sane
}
