//go:build linux

package main

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/proxy"
	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// The image tests prove the container image without a Docker engine: they read the
// Dockerfile, build the binary with the build stage's own go build line in a copy of
// the build context (.dockerignore applied), assemble a root filesystem holding only
// what the final stage copies, and run the ENTRYPOINT and the HEALTHCHECK in it with
// chroot as the USER. Run as root, or where unprivileged user namespaces are allowed;
// otherwise they skip (fail under HASHRELAY_CI=1).

var dockerfileFlag = flag.String("dockerfile", "", "Dockerfile the image tests prove (default: the repository's)")

const (
	imageTestVersion   = "v0.0.0-imagetest" // the VERSION build-arg
	imageBuildTimeout  = 5 * time.Minute
	imageHealthyWithin = 20 * time.Second // ENTRYPOINT -demo to a passing HEALTHCHECK
	imageSharesWithin  = 20 * time.Second
	imageModule        = "github.com/hashrelay/hashrelay/cmd/hashrelay"
	imageCABundle      = "/etc/ssl/certs/ca-certificates.crt"
)

// repoRoot is the directory above the test's holding go.mod: the build context.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// imageDockerfile parses the Dockerfile under test and returns it with the root of
// the build context.
func imageDockerfile(t *testing.T) (*dockerfile, string) {
	t.Helper()
	root := repoRoot(t)
	p := *dockerfileFlag
	if p == "" {
		p = filepath.Join(root, "Dockerfile")
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	d, err := parseDockerfile(string(b))
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	if len(d.stages) != 2 {
		t.Fatalf("%s: %d stages; the test models a build stage and the image", p, len(d.stages))
	}
	return d, root
}

// skipUnlessCI skips the test, or fails it under HASHRELAY_CI=1, where everything
// the tests need must be there (as deploy's promtool and proxy's chromium do).
func skipUnlessCI(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("HASHRELAY_CI") == "1" {
		t.Fatalf("%s (HASHRELAY_CI=1)", msg)
	}
	t.Skip(msg)
}

func TestImageDockerfileParser(t *testing.T) {
	const head = "FROM scratch\n"
	bad := func(text, want string) {
		t.Helper()
		_, err := parseDockerfile(text)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parse %q: error %v; want one with %q", text, err, want)
		}
	}
	bad(head+"ADD x /x\n", "line 2: ADD: instruction not understood")
	bad(head+"CMD [\"-demo\"]\n", "CMD: instruction not understood")
	bad("ARG X=1\n"+head, "before the first FROM")
	bad(head+"ENV A 1\n", "legacy ENV NAME VALUE form")
	bad(head+"COPY --chown=nonroot a /a\n", "want numeric UID:GID")
	bad(head+"COPY --link a /a\n", "flag --link not understood")
	bad(head+"HEALTHCHECK NONE\n", "HEALTHCHECK NONE")
	bad(head+"ENV A=1 \\\n", "continuation runs past the end")
	bad(head+"ENV A=$NOPE\n", "$NOPE: not an ENV or ARG")
	bad("FROM --network=none scratch\n", "flag --network=none")

	// ENV expands with the values from before the line, as Docker does.
	d, err := parseDockerfile(head + "# comment\nENV A=1\nENV A=2 \\\n  # comment inside\n  B=\"two words\" C=$A\n" +
		"HEALTHCHECK --timeout=5s \\\n CMD [\"/x\", \"healthcheck\"]\nENTRYPOINT /x\n")
	if err != nil {
		t.Fatal(err)
	}
	s := d.final()
	if got, want := s.envList(), []string{"A=2", "B=two words", "C=1"}; !slices.Equal(got, want) {
		t.Errorf("ENV = %q; want %q", got, want)
	}
	if h := s.health; !h.json || !slices.Equal(h.cmd, []string{"/x", "healthcheck"}) || h.options["timeout"] != "5s" {
		t.Errorf("HEALTHCHECK = %+v; want exec form [/x healthcheck], timeout 5s", h)
	}
	if s.entryJSON {
		t.Error("ENTRYPOINT /x parsed as exec form")
	}

	words := func(line string, want ...string) {
		t.Helper()
		got, err := shellWords(line, func(n string) (string, error) {
			if n == "V" {
				return "v1", nil
			}
			return "", errors.New("unknown " + n)
		})
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("shellWords(%q) = %q, %v; want %q", line, got, err, want)
		}
	}
	words(`GOOS=$V go build -ldflags "-s -X m.v=$V" -o /o ./c`, "GOOS=v1", "go", "build", "-ldflags", "-s -X m.v=v1", "-o", "/o", "./c")
	words(`a '$V b' ${V}c \"`, "a", "$V b", "v1c", `"`)
	for _, line := range []string{"go build && rm x", "go build $(pwd)", "go build $NOPE", "go build > x", "go `x`"} {
		if _, err := shellWords(line, func(string) (string, error) { return "", errors.New("unknown") }); err == nil {
			t.Errorf("shellWords(%q): no error", line)
		}
	}
}

// TestImageDockerfile checks the image's settings against each other: no shell
// needed, the ports it documents are the ports it listens on, the user is the
// unprivileged one the passwd file names, the Go it builds with is the Go here.
func TestImageDockerfile(t *testing.T) {
	d, root := imageDockerfile(t)
	img := d.final()
	if img.image != "scratch" {
		t.Errorf("final stage FROM %s; want scratch (the test assembles an empty root filesystem)", img.image)
	}
	if !img.entryJSON || len(img.entry) == 0 {
		t.Errorf("ENTRYPOINT %s: want exec form (a JSON array): the image has no shell", img.entryRaw)
	}
	if img.health == nil {
		t.Error("no HEALTHCHECK")
	} else if !img.health.json || len(img.health.cmd) == 0 {
		t.Errorf("HEALTHCHECK CMD %s: want exec form (a JSON array): the image has no shell", img.health.cmdRaw)
	}
	if _, err := signalNamed(img.stopSig); err != nil {
		t.Error(err)
	}
	if _, _, err := numericUser(img.user); err != nil {
		t.Error(err)
	}

	// EXPOSE lists exactly the ports of the listen addresses in ENV.
	var listenPorts []string
	for _, e := range img.env {
		if _, port, err := net.SplitHostPort(e.value); err == nil {
			if _, err := strconv.ParseUint(port, 10, 16); err == nil {
				listenPorts = append(listenPorts, port)
			}
		}
	}
	for _, name := range []string{"HASHRELAY_LISTEN", "HASHRELAY_HTTP"} {
		if imageEnv(img, name) == "" {
			t.Errorf("no ENV %s: the image must bind every interface itself", name)
		}
	}
	var exposed []string
	for _, p := range img.expose {
		port, proto, _ := strings.Cut(p, "/")
		if proto != "" && proto != "tcp" {
			t.Errorf("EXPOSE %s: HashRelay serves TCP only", p)
		}
		exposed = append(exposed, port)
	}
	slices.Sort(listenPorts)
	slices.Sort(exposed)
	if !slices.Equal(exposed, listenPorts) {
		t.Errorf("EXPOSE %v; want the ports of the ENV listen addresses %v", exposed, listenPorts)
	}

	// The build stage's Go is this test's, so the binary built here is the image's.
	build := d.stage(buildStageName(d))
	if build == nil {
		t.Fatal("no stage named by the final stage's COPY --from")
	}
	tag, ok := strings.CutPrefix(build.image, "golang:")
	goVersion, _, _ := strings.Cut(tag, "-")
	have := strings.TrimPrefix(runtime.Version(), "go")
	if !ok || !(have == goVersion || strings.HasPrefix(have, goVersion+".")) {
		t.Errorf("build stage FROM %s; this test builds with %s, so it would not prove that image", build.image, runtime.Version())
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Error(err)
	}
}

// buildStageName is the stage the final stage copies from ("" when none).
func buildStageName(d *dockerfile) string {
	for _, c := range d.final().copies {
		if c.from != "" {
			return c.from
		}
	}
	return ""
}

// imageEnv is the stage's value of ENV name ("" when unset).
func imageEnv(s *stage, name string) string {
	v := ""
	for _, e := range s.env {
		if e.name == name {
			v = e.value
		}
	}
	return v
}

// numericUser reads USER UID:GID; names would need the image's passwd, which the
// test does not resolve.
func numericUser(user string) (uid, gid int, err error) {
	u, g, ok := strings.Cut(user, ":")
	uid, err1 := strconv.Atoi(u)
	gid, err2 := strconv.Atoi(g)
	if user == "" || !ok || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("USER %q: want numeric UID:GID", user)
	}
	if uid == 0 || gid == 0 {
		return 0, 0, fmt.Errorf("USER %q: the image must not run as root", user)
	}
	return uid, gid, nil
}

// signalNamed maps STOPSIGNAL to a signal.
func signalNamed(name string) (syscall.Signal, error) {
	switch strings.TrimPrefix(strings.ToUpper(name), "SIG") {
	case "TERM", "15":
		return syscall.SIGTERM, nil
	case "INT", "2":
		return syscall.SIGINT, nil
	}
	return 0, fmt.Errorf("STOPSIGNAL %q: want SIGTERM or SIGINT, the signals HashRelay drains on", name)
}

// imageBuild is the binary built with the build stage's go build line.
type imageBuild struct {
	bin     string   // on this machine
	outPath string   // where the build stage puts it (go build -o)
	context string   // the copy of the build context it was built in
	argv    []string // the go command run
	err     error
}

var (
	imageBuildOnce sync.Once
	imageBuilt     imageBuild
)

// buildImage builds the image's binary once per test run.
func buildImage(t *testing.T) *imageBuild {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the image's binary with the Dockerfile's go build: not with -short")
	}
	d, root := imageDockerfile(t)
	imageBuildOnce.Do(func() {
		start := time.Now()
		imageBuilt = buildStageBinary(d, root, filepath.Join(binDir, "image"))
		if imageBuilt.err == nil {
			t.Logf("built in %v: %q", time.Since(start).Round(time.Millisecond), imageBuilt.argv)
		}
	})
	if imageBuilt.err != nil {
		t.Fatal(imageBuilt.err)
	}
	return &imageBuilt
}

// buildStageBinary copies the build context into dir and runs the build stage's
// one RUN … go build … there as the stage would: its ENV, its ARG defaults, the
// target platform's TARGETOS and TARGETARCH, VERSION set as a build-arg. Only the
// -o path changes, to a file under dir.
func buildStageBinary(d *dockerfile, root, dir string) imageBuild {
	b := imageBuild{context: filepath.Join(dir, "context")}
	s := d.stage(buildStageName(d))
	if s == nil {
		return imageBuild{err: errors.New("the final stage copies from no build stage")}
	}
	var run *runOp
	for i, r := range s.runs {
		if strings.Contains(r.text, "go build") {
			if run != nil {
				return imageBuild{err: fmt.Errorf("lines %d and %d: two RUN go build; keep the build in one line", run.line, r.line)}
			}
			run = &s.runs[i]
		}
	}
	if run == nil {
		return imageBuild{err: errors.New("build stage: no RUN … go build …")}
	}
	args := map[string]string{"TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH, "VERSION": imageTestVersion}
	argValue := func(name string) (string, bool) { v, ok := args[name]; return v, ok }
	words, err := shellWords(run.text, s.lookup(argValue))
	if err != nil {
		return imageBuild{err: fmt.Errorf("line %d: %v", run.line, err)}
	}

	// The RUN's environment: the stage's ARGs and ENV, then the line's NAME=value,
	// over this machine's, less what the golang image leaves unset and would decide
	// what the binary is (nor a go env -w file: GOENV=off).
	env := []string{"GOENV=off"}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "GOENV", "GOFLAGS", "CGO_ENABLED", "GOOS", "GOARCH", "GOEXPERIMENT":
		default:
			env = append(env, kv)
		}
	}
	lookup := s.lookup(argValue)
	for _, a := range s.args {
		if v, err := lookup(a.name); err == nil {
			env = append(env, a.name+"="+v)
		}
	}
	env = append(env, s.envList()...)
	var assigns []string
	for len(words) > 0 && isAssignment(words[0]) {
		assigns, words = append(assigns, words[0]), words[1:]
	}
	env = append(env, assigns...)
	if len(words) < 2 || words[0] != "go" || words[1] != "build" {
		return imageBuild{err: fmt.Errorf("line %d: %q: want [NAME=value…] go build …", run.line, run.text)}
	}
	b.bin = filepath.Join(dir, "out", "hashrelay")
	for i, w := range words {
		var out string
		switch {
		case w == "-o" && i+1 < len(words):
			out, words[i+1] = words[i+1], b.bin
		case strings.HasPrefix(w, "-o="):
			out, words[i] = strings.TrimPrefix(w, "-o="), "-o="+b.bin
		default:
			continue
		}
		b.outPath = out
		if !path.IsAbs(out) {
			b.outPath = path.Join(s.workdir, out)
		}
		if strings.HasSuffix(out, "/") {
			return imageBuild{err: fmt.Errorf("line %d: go build -o %s: name the binary, not a directory", run.line, out)}
		}
		break
	}
	if b.outPath == "" {
		return imageBuild{err: fmt.Errorf("line %d: go build without -o: the final stage cannot name the binary", run.line)}
	}

	if err := copyContext(root, b.context); err != nil {
		return imageBuild{err: fmt.Errorf("build context: %v", err)}
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return imageBuild{err: err}
	}
	ctx, cancel := context.WithTimeout(context.Background(), imageBuildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, words[1:]...)
	cmd.Dir, cmd.Env = b.context, env
	b.argv = append(append(s.envList(), assigns...), words...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return imageBuild{err: fmt.Errorf("line %d: %s: %v\n%s", run.line, strings.Join(words, " "), err, out)}
	}
	return b
}

// isAssignment reports whether a shell word is NAME=value.
func isAssignment(w string) bool {
	n := len(varName.FindString(w))
	return n > 0 && n == strings.Index(w, "=")
}

// TestImageBinary checks the binary the build stage makes: static (it must run in
// an empty image), trimmed (no build machine paths), stamped with VERSION.
func TestImageBinary(t *testing.T) {
	b := buildImage(t)
	f, err := elf.Open(b.bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has a PT_INTERP (dynamic loader): not static")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("DT_NEEDED %q (%v); want none", libs, err)
	}

	data, err := os.ReadFile(b.bin)
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{repoRoot(t), b.context}
	out, err := exec.Command("go", "env", "GOPATH", "GOMODCACHE", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Fields(string(out)) {
		paths = append(paths, filepath.SplitList(l)...)
	}
	for _, p := range paths {
		if len(p) > 1 && bytes.Contains(data, []byte(p)) {
			t.Errorf("the binary holds the build machine's path %s: not trimmed", p)
		}
	}

	info, err := buildinfo.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	for k, want := range map[string]string{"-trimpath": "true", "CGO_ENABLED": "0", "GOOS": runtime.GOOS, "GOARCH": runtime.GOARCH} {
		if settings[k] != want {
			t.Errorf("build setting %s = %q; want %q", k, settings[k], want)
		}
	}
	if info.Path != imageModule {
		t.Errorf("built %s; want %s", info.Path, imageModule)
	}

	got, err := exec.Command(b.bin, "-version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := "hashrelay " + imageTestVersion + "\n"; string(got) != want {
		t.Errorf("-version printed %q; want %q (VERSION not stamped)", got, want)
	}
}

// assembleRoot builds the image's root filesystem in a new directory: only the
// files the final stage copies, from the build context or, for the build stage,
// the binary built here and this machine's CA bundle (Debian's, as in
// golang:*-bookworm).
func assembleRoot(t *testing.T, d *dockerfile, b *imageBuild) (root string, dirs []imageDir) {
	t.Helper()
	root = t.TempDir()
	img := d.final()
	for _, c := range img.copies {
		for _, src := range c.srcs {
			dst := c.dst
			if !path.IsAbs(dst) {
				dst = path.Join(img.workdir, dst)
			}
			if len(c.srcs) > 1 || strings.HasSuffix(c.dst, "/") {
				dst = path.Join(dst, path.Base(src))
			}
			var from string
			switch c.from {
			case "":
				from = filepath.Join(b.context, filepath.FromSlash(path.Clean(src)))
				if _, err := os.Stat(from); err != nil {
					t.Fatalf("line %d: COPY %s: not in the build context (.dockerignore?): %v", c.line, src, err)
				}
			case buildStageName(d):
				if slices.Contains(d.stage(c.from).dirs, path.Clean(src)) {
					// A directory the build stage made (empty): made here, owned
					// as --chown says, which chownDirs applies once the sandbox
					// knows how the image's ids map to this machine's.
					if err := os.MkdirAll(filepath.Join(root, filepath.FromSlash(dst)), 0o755); err != nil {
						t.Fatal(err)
					}
					dirs = append(dirs, imageDir{path: dst, owner: c.chown})
					continue
				}
				switch path.Clean(src) {
				case b.outPath:
					from = b.bin
				case imageCABundle:
					if _, err := os.Stat(imageCABundle); err != nil {
						skipUnlessCI(t, "no %s on this machine to stand in for the build stage's: apt-get install ca-certificates", imageCABundle)
					}
					from = imageCABundle
				default:
					t.Fatalf("line %d: COPY --from=%s %s: the test knows only the build stage's binary (%s) and %s", c.line, c.from, src, b.outPath, imageCABundle)
				}
			default:
				t.Fatalf("line %d: COPY --from=%s: not the build stage", c.line, c.from)
			}
			if err := copyFile(from, filepath.Join(root, filepath.FromSlash(dst))); err != nil {
				t.Fatalf("line %d: %v", c.line, err)
			}
		}
	}
	if err := os.MkdirAll(filepath.Join(root, filepath.FromSlash(img.workdir)), 0o755); err != nil {
		t.Fatal(err)
	}
	// TempDir is 0700: the image's user must be able to reach its files.
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	return root, dirs
}

// imageDir is a directory the final stage copies from one a build-stage RUN mkdir
// made, and its COPY --chown owner ("" for root).
type imageDir struct {
	path, owner string
}

// chownDirs gives each directory its --chown owner as the sandbox sees it: the
// image's ids themselves as root, this user when they are mapped to it.
func (s *sandbox) chownDirs(t *testing.T, dirs []imageDir) {
	t.Helper()
	for _, d := range dirs {
		if d.owner == "" {
			continue
		}
		uid, gid, err := numericUser(d.owner)
		if err != nil {
			t.Fatal(err)
		}
		if s.userns {
			if uid != s.uid || gid != s.gid {
				t.Fatalf("%s: --chown=%s is not the USER %d:%d, the only ids mapped in a user namespace", d.path, d.owner, s.uid, s.gid)
			}
			uid, gid = s.hostUID, s.hostGID
		}
		if err := os.Chown(filepath.Join(s.root, filepath.FromSlash(d.path)), uid, gid); err != nil {
			t.Fatal(err)
		}
	}
}

// sandbox runs commands in the image's root filesystem as its user.
type sandbox struct {
	root    string
	uid     int // the image's
	gid     int
	hostUID int // the same user as /proc shows it
	hostGID int
	userns  bool // in a new user namespace (not root here)
	workdir string
}

// newSandbox returns a sandbox for root, or skips (fails under HASHRELAY_CI=1)
// when this machine allows neither chroot (root) nor unprivileged user namespaces.
func newSandbox(t *testing.T, root, user, workdir string) *sandbox {
	t.Helper()
	uid, gid, err := numericUser(user)
	if err != nil {
		t.Fatal(err)
	}
	s := &sandbox{root: root, uid: uid, gid: gid, hostUID: uid, hostGID: gid, workdir: workdir}
	if os.Geteuid() == 0 {
		return s
	}
	s.userns, s.hostUID, s.hostGID = true, os.Getuid(), os.Getgid()
	probe := s.command(context.Background(), nil, []string{"/nonexistent"})
	err = probe.Run()
	var pe *os.PathError
	if errors.As(err, &pe) && errors.Is(err, syscall.ENOENT) {
		return s // it got as far as exec in the chroot
	}
	skipUnlessCI(t, "running the image needs root (chroot) or unprivileged user namespaces: %v", err)
	return nil
}

// command is argv run in the root filesystem as the image's user, with exactly env.
func (s *sandbox) command(ctx context.Context, env, argv []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Dir = s.workdir
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot:     s.root,
		Credential: &syscall.Credential{Uid: uint32(s.uid), Gid: uint32(s.gid), Groups: []uint32{}},
	}
	if s.userns {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: s.uid, HostID: s.hostUID, Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: s.gid, HostID: s.hostGID, Size: 1}}
		cmd.SysProcAttr.Credential.NoSetGroups = true // setgroups is denied in the namespace
	}
	return cmd
}

// container is the ENTRYPOINT running in the sandbox.
type container struct {
	cmd     *exec.Cmd
	out     stratumtest.SyncBuffer // stdout and stderr
	exited  chan struct{}
	waitErr error // set before exited closes
}

// startContainer runs the ENTRYPOINT with args, as docker run IMAGE args would. It
// is killed when the test ends if still running.
func startContainer(t *testing.T, s *sandbox, env, entry []string, args ...string) *container {
	t.Helper()
	c := &container{exited: make(chan struct{})}
	c.cmd = s.command(context.Background(), env, append(slices.Clone(entry), args...))
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start %q in the image: %v", c.cmd.Args, err)
	}
	go func() {
		c.waitErr = c.cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-c.exited:
		default:
			c.cmd.Process.Kill()
			<-c.exited
		}
	})
	return c
}

// running reports whether the container has not exited.
func (c *container) running() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// checkHealth runs the HEALTHCHECK's CMD in the sandbox with env, bounded by its
// --timeout as Docker bounds it, and returns its exit code and output.
func checkHealth(t *testing.T, s *sandbox, h *healthcheck, env []string) (int, string) {
	t.Helper()
	timeout, err := time.ParseDuration(h.options["timeout"])
	if err != nil {
		timeout = 30 * time.Second // Docker's default
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := s.command(ctx, env, h.cmd)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case ctx.Err() != nil:
		t.Fatalf("HEALTHCHECK %q ran over its --timeout %v", h.cmd, timeout)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("HEALTHCHECK %q: %v", h.cmd, err)
	return 0, ""
}

// waitHealthy runs the HEALTHCHECK until it passes, the container exits, or
// imageHealthyWithin passes; it reports whether it passed.
func waitHealthy(t *testing.T, s *sandbox, h *healthcheck, c *container, env []string) bool {
	t.Helper()
	deadline := time.Now().Add(imageHealthyWithin)
	for {
		code, out := checkHealth(t, s, h, env)
		if code == 0 {
			return true
		}
		if !c.running() || time.Now().After(deadline) {
			t.Logf("last HEALTHCHECK: exit %d: %s", code, out)
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freeAddr is a loopback address with a port nothing listened on a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// withEnv is env with name set to value, as docker run -e would override it.
func withEnv(env []string, name, value string) []string {
	out := slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, name+"=") })
	return append(out, name+"="+value)
}

// getJSON fetches url and decodes its JSON body into v, wanting 200.
func getJSON(url string, v any) error {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	if v == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// procIDs reads the real, effective, saved and filesystem uid or gid ("Uid", "Gid")
// of a running process from /proc.
func procIDs(pid int, field string) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, field+":"); ok {
			return strings.Fields(rest), nil
		}
	}
	return nil, fmt.Errorf("/proc/%d/status: no %s line", pid, field)
}

// TestImageRun runs the image as docker run IMAGE -demo would: the ENTRYPOINT in a
// root filesystem holding only what the final stage copies, as the USER, with the
// ENV; then the HEALTHCHECK, the HTTP endpoints, the demo's shares, and a clean
// exit on the STOPSIGNAL.
func TestImageRun(t *testing.T) {
	b := buildImage(t)
	d, _ := imageDockerfile(t)
	img := d.final()
	if !img.entryJSON || img.health == nil || !img.health.json {
		t.Fatal("ENTRYPOINT and HEALTHCHECK CMD must be exec form (TestImageDockerfile says which)")
	}
	stop, err := signalNamed(img.stopSig)
	if err != nil {
		t.Fatal(err)
	}

	root, dirs := assembleRoot(t, d, b)
	var files []string
	filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			rel, _ := filepath.Rel(root, p)
			files = append(files, "/"+filepath.ToSlash(rel))
		}
		return nil
	})
	t.Logf("image files: %v", files)
	for _, sh := range []string{"/bin/sh", "/usr/bin/sh", "/bin/bash", "/bin/busybox"} {
		if _, err := os.Lstat(filepath.Join(root, sh)); err == nil {
			t.Errorf("the image holds %s; want no shell", sh)
		}
	}
	uid, gid, err := numericUser(img.user)
	if err != nil {
		t.Fatal(err)
	}
	for file, id := range map[string]int{"/etc/passwd": uid, "/etc/group": gid} {
		b, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Errorf("the image has no %s naming USER %s: %v", file, img.user, err)
			continue
		}
		named := false
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Split(l, ":"); len(f) > 2 && f[2] == strconv.Itoa(id) {
				named = true
			}
		}
		if !named {
			t.Errorf("%s names no id %d (USER %s)", file, id, img.user)
		}
	}

	s := newSandbox(t, root, img.user, img.workdir)
	s.chownDirs(t, dirs)

	t.Run("demo", func(t *testing.T) {
		var c *container
		var env []string
		var httpAddr string
		for attempt := 1; ; attempt++ {
			httpAddr = freeAddr(t)
			env = withEnv(withEnv(img.envList(), "HASHRELAY_LISTEN", freeAddr(t)), "HASHRELAY_HTTP", httpAddr)
			c = startContainer(t, s, env, img.entry, "-demo")
			if waitHealthy(t, s, img.health, c, env) {
				break
			}
			if !c.running() && strings.Contains(c.out.String(), "address already in use") && attempt < 3 {
				t.Logf("port taken between choosing and binding; again")
				continue
			}
			t.Fatalf("HEALTHCHECK %q not passing within %v of %q; output:\n%s", img.health.cmd, imageHealthyWithin, c.cmd.Args, c.out.String())
		}

		// The process runs as USER (in a user namespace, as the host user mapped
		// to it): real, effective, saved and filesystem ids alike.
		for field, want := range map[string]int{"Uid": s.hostUID, "Gid": s.hostGID} {
			got, err := procIDs(c.cmd.Process.Pid, field)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 4 || slices.ContainsFunc(got, func(id string) bool { return id != strconv.Itoa(want) }) {
				t.Errorf("/proc/%d/status %s: %v; want all %d (USER %s)", c.cmd.Process.Pid, field, got, want, img.user)
			}
			t.Logf("%s: %v", field, got)
		}
		if s.userns {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", c.cmd.Process.Pid))
			if want := []string{strconv.Itoa(s.uid), strconv.Itoa(s.hostUID), "1"}; err != nil || !slices.Equal(strings.Fields(string(b)), want) {
				t.Errorf("uid_map %q (%v); want %v: USER %s mapped to this user", b, err, want, img.user)
			}
		}

		// Ready once the demo pool is up (live, per the HEALTHCHECK, comes first),
		// then the demo's miners' shares are accepted by the proxy and the pool.
		var sum proxy.Summary
		deadline := time.Now().Add(imageSharesWithin)
		for {
			readyErr := getJSON("http://"+httpAddr+"/readyz", nil)
			sum = proxy.Summary{}
			if err := getJSON("http://"+httpAddr+"/api/v1/summary", &sum); err != nil {
				t.Fatalf("/api/v1/summary: %v", err)
			}
			if readyErr == nil && sum.Accepted > 0 && sum.UpstreamAccepted > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("within %v: /readyz: %v; summary %+v; want ready and shares accepted\n%s", imageSharesWithin, readyErr, sum, c.out.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
		if sum.Version != imageTestVersion || sum.MinersConnected == 0 || sum.Upstreams.Up == 0 {
			t.Errorf("summary: version %q, %d miners, %d upstreams up; want %q, miners, the demo pool up",
				sum.Version, sum.MinersConnected, sum.Upstreams.Up, imageTestVersion)
		}
		t.Logf("summary: %d miners, %d accepted, %d accepted upstream", sum.MinersConnected, sum.Accepted, sum.UpstreamAccepted)

		stopContainer(t, c, stop)
		// The image's state directory took the worker counters at shutdown.
		if dir := imageEnv(img, "HASHRELAY_STATE_DIR"); dir != "" {
			st, err := os.Stat(filepath.Join(root, filepath.FromSlash(dir), "hashrelay.db"))
			if err != nil || st.Size() == 0 {
				t.Errorf("HASHRELAY_STATE_DIR=%s: no state saved there at shutdown (%v); want the directory writable by USER %s", dir, err, img.user)
			}
		}
		// Nothing answers now: the HEALTHCHECK fails with 1 (Docker reserves 2).
		if code, out := checkHealth(t, s, img.health, env); code != 1 {
			t.Errorf("HEALTHCHECK with nothing listening: exit %d (%s); want 1", code, out)
		}
	})

	// With the image's own HASHRELAY_HTTP (every interface), the HEALTHCHECK asks
	// loopback. The port is fixed, so a busy one skips this rather than fail.
	t.Run("image HTTP address", func(t *testing.T) {
		httpEnv := imageEnv(img, "HASHRELAY_HTTP")
		_, port, err := net.SplitHostPort(httpEnv)
		if err != nil {
			t.Fatalf("ENV HASHRELAY_HTTP=%s: %v", httpEnv, err)
		}
		l, err := net.Listen("tcp", ":"+port)
		if err != nil {
			t.Skipf("port %s is busy here, so the image's HASHRELAY_HTTP=%s cannot be tried: %v", port, httpEnv, err)
		}
		l.Close()
		env := withEnv(img.envList(), "HASHRELAY_LISTEN", freeAddr(t))
		c := startContainer(t, s, env, img.entry, "-demo")
		// Only once this HashRelay holds the port is a passing HEALTHCHECK its own.
		deadline := time.Now().Add(imageHealthyWithin)
		for !strings.Contains(c.out.String(), `"message":"hashrelay started"`) {
			switch {
			case !c.running() && strings.Contains(c.out.String(), "address already in use"):
				t.Skipf("port %s was taken before HashRelay bound it", port)
			case !c.running() || time.Now().After(deadline):
				t.Fatalf("HashRelay with HASHRELAY_HTTP=%s not started within %v; output:\n%s", httpEnv, imageHealthyWithin, c.out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
		if !waitHealthy(t, s, img.health, c, env) {
			t.Fatalf("HEALTHCHECK with HASHRELAY_HTTP=%s not passing within %v; output:\n%s", httpEnv, imageHealthyWithin, c.out.String())
		}
		// It asked this HashRelay, not something else on the port.
		var sum proxy.Summary
		if err := getJSON("http://127.0.0.1:"+port+"/api/v1/summary", &sum); err != nil || sum.Version != imageTestVersion {
			t.Errorf("127.0.0.1:%s/api/v1/summary: version %q, %v; want %q", port, sum.Version, err, imageTestVersion)
		}
		stopContainer(t, c, stop)
	})
}

// stopContainer sends the STOPSIGNAL and wants exit status 0 within the default
// -shutdown-timeout and a margin.
func stopContainer(t *testing.T, c *container, sig syscall.Signal) {
	t.Helper()
	bound := proxy.DefaultShutdownTimeout + 5*time.Second
	start := time.Now()
	if err := c.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.exited:
		if c.waitErr != nil {
			t.Errorf("exit after %v: %v; want status 0\n%s", sig, c.waitErr, c.out.String())
		}
		t.Logf("exited with status 0 %v after %v", time.Since(start).Round(time.Millisecond), sig)
	case <-time.After(bound):
		t.Fatalf("still running %v after %v\n%s", bound, sig, c.out.String())
	}
}
