//go:build linux

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// This file reads the Dockerfile and .dockerignore for image_test.go. The parser
// knows only the instructions and flags HashRelay's Dockerfile uses and returns an
// error for anything else, so a change to the Dockerfile that the test cannot model
// fails the test instead of being ignored.

// dockerfile is a parsed Dockerfile: its stages in order.
type dockerfile struct {
	stages []*stage
}

// stage is one FROM … up to the next FROM, with every instruction applied.
type stage struct {
	line      int    // of the FROM
	image     string // "golang:1.26-bookworm", "scratch"
	name      string // AS name, "" when none
	platform  string // --platform, unexpanded
	workdir   string // absolute; "/" when no WORKDIR
	args      []buildArg
	env       []envVar // in the order set; a later one wins
	copies    []copyOp
	runs      []runOp
	dirs      []string // made by RUN mkdir -p, absolute
	user      string   // "" when no USER
	expose    []string
	health    *healthcheck
	stopSig   string // STOPSIGNAL, "" when none
	entry     []string
	entryRaw  string // ENTRYPOINT as written
	entryJSON bool   // ENTRYPOINT in exec form
}

type buildArg struct {
	name, def  string
	hasDefault bool
}

type envVar struct{ name, value string }

// copyOp is COPY [--from=stage] [--chown=uid:gid] src… dst.
type copyOp struct {
	line  int
	from  string // "" for the build context
	chown string // numeric uid:gid, "" when none
	srcs  []string
	dst   string
}

// runOp is a RUN in shell form, as written.
type runOp struct {
	line int
	text string
}

// healthcheck is HEALTHCHECK [--option=value…] CMD ….
type healthcheck struct {
	options map[string]string // "interval" → "30s"
	cmd     []string          // exec form only
	cmdRaw  string
	json    bool // CMD in exec form
}

// stage returns the stage named name (or numbered, as --from=0 allows).
func (d *dockerfile) stage(name string) *stage {
	for i, s := range d.stages {
		if s.name == name || fmt.Sprint(i) == name {
			return s
		}
	}
	return nil
}

// final is the last stage: the image.
func (d *dockerfile) final() *stage { return d.stages[len(d.stages)-1] }

// envList is the stage's ENV as KEY=VALUE, the last value of each name.
func (s *stage) envList() []string {
	var out []string
	seen := map[string]int{}
	for _, e := range s.env {
		if i, ok := seen[e.name]; ok {
			out[i] = e.name + "=" + e.value
			continue
		}
		seen[e.name] = len(out)
		out = append(out, e.name+"="+e.value)
	}
	return out
}

// lookup finds a variable for expansion in this stage: ENV first (it wins over
// ARG in Docker), then ARG, whose value is argValue's when it knows one, else the
// default. An unknown variable is an error, so the test never guesses.
func (s *stage) lookup(argValue func(name string) (string, bool)) func(string) (string, error) {
	return func(name string) (string, error) {
		for i := len(s.env) - 1; i >= 0; i-- {
			if s.env[i].name == name {
				return s.env[i].value, nil
			}
		}
		for _, a := range s.args {
			if a.name != name {
				continue
			}
			if argValue != nil {
				if v, ok := argValue(name); ok {
					return v, nil
				}
			}
			if a.hasDefault {
				return a.def, nil
			}
			return "", fmt.Errorf("$%s: ARG without a default that the test gives no value", name)
		}
		return "", fmt.Errorf("$%s: not an ENV or ARG of this stage", name)
	}
}

// instruction is one Dockerfile instruction with its continuation lines joined.
type instruction struct {
	line int    // where it starts
	cmd  string // upper case
	args string
}

// readInstructions splits a Dockerfile into instructions: '#' starts a comment line
// (also inside a continuation), a trailing backslash continues the line.
func readInstructions(text string) ([]instruction, error) {
	var out []instruction
	var cur strings.Builder
	start, cont := 0, false
	for i, raw := range strings.Split(text, "\n") {
		l := strings.TrimSpace(raw)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if !cont {
			start = i + 1
			cur.Reset()
		}
		if body, ok := strings.CutSuffix(l, `\`); ok {
			cur.WriteString(body)
			cur.WriteByte(' ')
			cont = true
			continue
		}
		cur.WriteString(l)
		cont = false
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
	}
	if cont {
		return nil, fmt.Errorf("line %d: continuation runs past the end of the file", start)
	}
	return out, nil
}

// parseDockerfile parses text, failing on any instruction, flag or form it does
// not understand.
func parseDockerfile(text string) (*dockerfile, error) {
	ins, err := readInstructions(text)
	if err != nil {
		return nil, err
	}
	d := &dockerfile{}
	for _, in := range ins {
		if err := d.apply(in); err != nil {
			return nil, fmt.Errorf("line %d: %s: %v", in.line, in.cmd, err)
		}
	}
	if len(d.stages) == 0 {
		return nil, errors.New("no FROM")
	}
	return d, nil
}

// apply adds one instruction to the Dockerfile being parsed.
func (d *dockerfile) apply(in instruction) error {
	if in.cmd == "FROM" {
		return d.from(in)
	}
	if len(d.stages) == 0 {
		return errors.New("before the first FROM (not understood by image_test.go)")
	}
	s := d.stages[len(d.stages)-1]
	noVars := func() error {
		if strings.Contains(in.args, "$") {
			return errors.New("variables here are not understood by image_test.go")
		}
		return nil
	}
	switch in.cmd {
	case "WORKDIR":
		w, err := shellWords(in.args, s.lookup(nil))
		if err != nil || len(w) != 1 {
			return fmt.Errorf("want one path: %q", in.args)
		}
		if !path.IsAbs(w[0]) {
			s.workdir = path.Join(s.workdir, w[0])
		} else {
			s.workdir = path.Clean(w[0])
		}
	case "COPY":
		if err := noVars(); err != nil {
			return err
		}
		if strings.HasPrefix(in.args, "[") {
			return errors.New("exec (JSON) form not understood by image_test.go")
		}
		op := copyOp{line: in.line}
		words := strings.Fields(in.args)
		for len(words) > 0 && strings.HasPrefix(words[0], "--") {
			if from, ok := strings.CutPrefix(words[0], "--from="); ok {
				op.from, words = from, words[1:]
				continue
			}
			if owner, ok := strings.CutPrefix(words[0], "--chown="); ok {
				if _, _, err := numericUser(owner); err != nil {
					return fmt.Errorf("--chown=%s: %v", owner, err)
				}
				op.chown, words = owner, words[1:]
				continue
			}
			return fmt.Errorf("flag %s not understood by image_test.go", words[0])
		}
		if len(words) < 2 {
			return errors.New("want SRC… DST")
		}
		op.srcs, op.dst = words[:len(words)-1], words[len(words)-1]
		s.copies = append(s.copies, op)
	case "RUN":
		if strings.HasPrefix(in.args, "[") || strings.HasPrefix(in.args, "--") {
			return errors.New("exec form and RUN flags are not understood by image_test.go")
		}
		s.runs = append(s.runs, runOp{line: in.line, text: in.args})
		if dirs, ok := strings.CutPrefix(in.args, "mkdir -p "); ok {
			for _, d := range strings.Fields(dirs) {
				if !path.IsAbs(d) {
					d = path.Join(s.workdir, d)
				}
				s.dirs = append(s.dirs, path.Clean(d))
			}
		}
	case "ARG":
		if err := noVars(); err != nil {
			return err
		}
		for _, w := range strings.Fields(in.args) {
			name, def, ok := strings.Cut(w, "=")
			s.args = append(s.args, buildArg{name: name, def: strings.Trim(def, `"`), hasDefault: ok})
		}
	case "ENV":
		words, err := shellWords(in.args, s.lookup(nil))
		if err != nil {
			return err
		}
		for _, w := range words {
			name, value, ok := strings.Cut(w, "=")
			if !ok || name == "" {
				return fmt.Errorf("%q: want NAME=VALUE (the legacy ENV NAME VALUE form is not understood by image_test.go)", w)
			}
			s.env = append(s.env, envVar{name, value})
		}
	case "USER":
		if err := noVars(); err != nil {
			return err
		}
		if f := strings.Fields(in.args); len(f) != 1 {
			return errors.New("want USER UID[:GID]")
		}
		s.user = in.args
	case "EXPOSE":
		if err := noVars(); err != nil {
			return err
		}
		s.expose = append(s.expose, strings.Fields(in.args)...)
	case "HEALTHCHECK":
		h, err := parseHealthcheck(in.args)
		if err != nil {
			return err
		}
		s.health = h
	case "STOPSIGNAL":
		if err := noVars(); err != nil {
			return err
		}
		s.stopSig = in.args
	case "ENTRYPOINT":
		s.entryRaw = in.args
		s.entry, s.entryJSON = nil, false
		if strings.HasPrefix(in.args, "[") {
			if err := json.Unmarshal([]byte(in.args), &s.entry); err != nil {
				return fmt.Errorf("exec form: %v", err)
			}
			s.entryJSON = true
		}
	default:
		return errors.New("instruction not understood by image_test.go: teach the test before using it")
	}
	return nil
}

// from starts a stage: FROM [--platform=P] IMAGE [AS NAME].
func (d *dockerfile) from(in instruction) error {
	s := &stage{line: in.line, workdir: "/"}
	words := strings.Fields(in.args)
	for len(words) > 0 && strings.HasPrefix(words[0], "--") {
		p, ok := strings.CutPrefix(words[0], "--platform=")
		if !ok {
			return fmt.Errorf("flag %s not understood by image_test.go", words[0])
		}
		s.platform, words = p, words[1:]
	}
	switch {
	case len(words) == 1:
	case len(words) == 3 && strings.EqualFold(words[1], "AS"):
		s.name = words[2]
	default:
		return fmt.Errorf("want FROM [--platform=P] IMAGE [AS NAME]: %q", in.args)
	}
	if strings.Contains(words[0], "$") {
		return errors.New("variables in the image name are not understood by image_test.go")
	}
	s.image = words[0]
	d.stages = append(d.stages, s)
	return nil
}

// parseHealthcheck reads [--name=value…] CMD ["exe", "arg"…]; a shell-form CMD is
// kept as written (cmdRaw) so the test can say it wants exec form.
func parseHealthcheck(args string) (*healthcheck, error) {
	h := &healthcheck{options: map[string]string{}}
	rest := args
	for strings.HasPrefix(rest, "--") {
		opt, after, _ := strings.Cut(rest, " ")
		name, value, ok := strings.Cut(strings.TrimPrefix(opt, "--"), "=")
		switch name {
		case "interval", "timeout", "start-period", "start-interval", "retries":
		default:
			return nil, fmt.Errorf("option --%s not understood by image_test.go", name)
		}
		if !ok {
			return nil, fmt.Errorf("--%s: want --%s=VALUE", name, name)
		}
		h.options[name] = value
		rest = strings.TrimSpace(after)
	}
	cmd, after, _ := strings.Cut(rest, " ")
	if !strings.EqualFold(cmd, "CMD") {
		return nil, fmt.Errorf("%q: want CMD (HEALTHCHECK NONE is not understood by image_test.go)", rest)
	}
	h.cmdRaw = strings.TrimSpace(after)
	if strings.HasPrefix(h.cmdRaw, "[") {
		if err := json.Unmarshal([]byte(h.cmdRaw), &h.cmd); err != nil {
			return nil, fmt.Errorf("CMD exec form: %v", err)
		}
		h.json = true
	}
	return h, nil
}

// shellWords splits a shell command line into words as sh would for a simple
// command: blanks separate words, '…' is literal, "…" and bare text expand $NAME
// and ${NAME} through lookup, backslash escapes. Anything more (; & | < > ( ) `,
// $(…), ${NAME:-…}) is an error, so a RUN the test cannot model is never run.
func shellWords(s string, lookup func(string) (string, error)) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	expand := func(i int) (int, error) { // s[i] == '$'; returns the bytes consumed
		n, v, err := expandVar(s[i:], lookup)
		w.WriteString(v)
		return n, err
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated ' in %q", s)
			}
			w.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			inWord = true
			for i++; i < len(s) && s[i] != '"'; i++ {
				switch s[i] {
				case '\\':
					if i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
						i++
					}
					w.WriteByte(s[i])
				case '$':
					n, err := expand(i)
					if err != nil {
						return nil, err
					}
					i += n - 1
				case '`':
					return nil, fmt.Errorf("command substitution not understood by image_test.go: %q", s)
				default:
					w.WriteByte(s[i])
				}
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated \" in %q", s)
			}
		case c == '\\':
			if i+1 < len(s) {
				i++
				w.WriteByte(s[i])
			}
			inWord = true
		case c == '$':
			n, err := expand(i)
			if err != nil {
				return nil, err
			}
			i += n - 1
			inWord = true
		case strings.IndexByte(";&|<>()`", c) >= 0:
			return nil, fmt.Errorf("shell syntax %q not understood by image_test.go: %q", c, s)
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// varName is a shell variable name.
var varName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*`)

// expandVar expands the $NAME or ${NAME} that s starts with, returning the bytes
// it took and the value.
func expandVar(s string, lookup func(string) (string, error)) (int, string, error) {
	if strings.HasPrefix(s, "${") {
		end := strings.IndexByte(s, '}')
		if end < 0 || !varName.MatchString(s[2:end]) || len(varName.FindString(s[2:end])) != end-2 {
			return 0, "", fmt.Errorf("%q: only ${NAME} is understood by image_test.go", s)
		}
		v, err := lookup(s[2:end])
		return end + 1, v, err
	}
	name := varName.FindString(s[1:])
	if name == "" {
		return 0, "", fmt.Errorf("%q: only $NAME is understood by image_test.go", s)
	}
	v, err := lookup(name)
	return 1 + len(name), v, err
}

// ignorePattern is one line of .dockerignore.
type ignorePattern struct {
	text   string // cleaned, without '!'
	re     *regexp.Regexp
	negate bool
}

// readDockerignore reads the .dockerignore in dir (none: nothing is ignored).
// Patterns follow Docker's: paths relative to the context root, * and ? within a
// path element, ** across elements, a leading ! re-includes, the last match wins,
// and a pattern that matches a directory matches everything under it.
func readDockerignore(dir string) ([]ignorePattern, error) {
	b, err := os.ReadFile(filepath.Join(dir, ".dockerignore"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []ignorePattern
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		p := ignorePattern{}
		if rest, ok := strings.CutPrefix(l, "!"); ok {
			p.negate, l = true, strings.TrimSpace(rest)
		}
		p.text = strings.TrimPrefix(path.Clean(l), "/")
		if p.re, err = globRegexp(p.text); err != nil {
			return nil, fmt.Errorf(".dockerignore: %q: %v", l, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// globRegexp compiles a .dockerignore pattern.
func globRegexp(p string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '*' && strings.HasPrefix(p[i:], "**/"):
			b.WriteString("(.*/)?")
			i += 2
		case c == '*' && strings.HasPrefix(p[i:], "**"):
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		case c == '[' || c == '\\':
			return nil, errors.New("character classes and escapes are not understood by image_test.go")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// ignored reports whether rel (slash-separated, relative to the context root) is
// left out of the build context.
func ignored(patterns []ignorePattern, rel string) bool {
	out := false
	for _, p := range patterns {
		for q := rel; q != "." && q != "/"; q = path.Dir(q) {
			if p.re.MatchString(q) {
				out = !p.negate
				break
			}
		}
	}
	return out
}

// mayReinclude reports whether a negated pattern could bring back something under
// the ignored directory rel, so the walk must still look inside it.
func mayReinclude(patterns []ignorePattern, rel string) bool {
	for _, p := range patterns {
		if p.negate && (strings.HasPrefix(p.text, rel+"/") || strings.HasPrefix(p.text, "*")) {
			return true
		}
	}
	return false
}

// copyContext copies the build context (the files of root that .dockerignore does
// not exclude) to dst, as docker build sends it to the builder.
func copyContext(root, dst string) error {
	patterns, err := readDockerignore(root)
	if err != nil {
		return err
	}
	return filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		skip := ignored(patterns, rel)
		switch {
		case e.IsDir():
			if skip && !mayReinclude(patterns, rel) {
				return filepath.SkipDir
			}
			return nil
		case skip:
			return nil
		case e.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return symlinkAt(filepath.Join(dst, rel), target)
		case !e.Type().IsRegular():
			return nil
		}
		return copyFile(p, filepath.Join(dst, rel))
	})
}

func symlinkAt(p, target string) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.Symlink(target, p)
}

// copyFile copies the regular file src to dst with src's permission bits,
// creating dst's directories.
func copyFile(src, dst string) error {
	info, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file (image_test.go copies files only)", src)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(dst, b, info.Mode().Perm()); err != nil {
		return err
	}
	return os.Chmod(dst, info.Mode().Perm()) // WriteFile's mode is masked by umask
}
