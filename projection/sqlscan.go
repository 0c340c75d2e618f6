package projection

import "bytes"

// The scanner of SQL projection files. It knows just enough of
// PostgreSQL's lexical rules to find what matters to a projection file
// and nothing else: directives, :name parameters, $n parameters and the
// semicolons between statements, none of which count inside string
// constants, quoted identifiers, dollar-quoted strings or comments.

// tokenKind is what the scanner found.
type tokenKind uint8

const (
	tokText       tokenKind = iota // other SQL: words, constants, punctuation
	tokSemicolon                   // ; between statements
	tokParam                       // :name, a parameter bound by name
	tokPositional                  // $1, a positional parameter
	tokDirective                   // a "-- strata:" comment that starts its line
)

// token is one piece of a projection file. White space and comments
// other than directives are not tokens.
type token struct {
	kind       tokenKind
	start, end int // byte offsets in the file
	line       int // of start, from 1
	// text is the name of a parameter (without ':') or the text of a
	// directive after "strata:".
	text string
}

type scanner struct {
	source    string // the file's name, for errors
	src       []byte
	pos       int
	line      int
	lineStart bool // nothing but white space and comments since the last newline
	toks      []token
}

// scanSQL splits src, the text of source, into tokens.
func scanSQL(source string, src []byte) ([]token, error) {
	s := &scanner{source: source, src: src, line: 1, lineStart: true}
	for s.pos < len(s.src) {
		if err := s.next(); err != nil {
			return nil, err
		}
	}
	return s.toks, nil
}

func (s *scanner) next() error {
	start, line := s.pos, s.line
	c := s.src[s.pos]
	switch {
	case c == '\n':
		s.pos++
		s.line++
		s.lineStart = true
		return nil
	case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
		s.pos++
		return nil
	case s.has("--"):
		return s.lineComment()
	case s.has("/*"):
		return s.blockComment()
	}
	s.lineStart = false
	kind, text := tokText, ""
	switch {
	case c == '\'':
		if err := s.quoted('\'', false, "string constant"); err != nil {
			return err
		}
	case c == '"':
		if err := s.quoted('"', false, "quoted identifier"); err != nil {
			return err
		}
	case c == '$':
		var err error
		if kind, text, err = s.dollar(); err != nil {
			return err
		}
	case c == ':':
		kind, text = s.colon()
	case c == ';':
		s.pos++
		kind = tokSemicolon
	case isWordByte(c):
		for s.pos < len(s.src) && isWordByte(s.src[s.pos]) {
			s.pos++
		}
		// E'...' is a string constant with backslash escapes.
		if s.pos-start == 1 && (c == 'E' || c == 'e') && s.has("'") {
			if err := s.quoted('\'', true, "string constant"); err != nil {
				return err
			}
		}
	default:
		s.pos++
	}
	s.toks = append(s.toks, token{kind: kind, start: start, end: s.pos, line: line, text: text})
	return nil
}

func (s *scanner) has(prefix string) bool {
	return bytes.HasPrefix(s.src[s.pos:], []byte(prefix))
}

// lineComment skips a -- comment, or makes a directive of it.
func (s *scanner) lineComment() error {
	end := bytes.IndexByte(s.src[s.pos:], '\n')
	if end < 0 {
		end = len(s.src)
	} else {
		end += s.pos
	}
	body := bytes.TrimLeft(s.src[s.pos+2:end], " \t")
	if text, ok := bytes.CutPrefix(body, []byte("strata:")); ok {
		if !s.lineStart {
			return lineError(s.source, s.line, "a -- strata: directive must start its line")
		}
		s.toks = append(s.toks, token{kind: tokDirective, start: s.pos, end: end, line: s.line,
			text: string(bytes.TrimRight(text, " \t\r"))})
	}
	s.pos = end
	return nil
}

// blockComment skips a /* comment */, which may nest.
func (s *scanner) blockComment() error {
	line := s.line
	depth := 0
	for s.pos < len(s.src) {
		switch {
		case s.has("/*"):
			depth++
			s.pos += 2
		case s.has("*/"):
			depth--
			s.pos += 2
			if depth == 0 {
				return nil
			}
		default:
			if s.src[s.pos] == '\n' {
				s.line++
			}
			s.pos++
		}
	}
	return lineError(s.source, line, "unterminated /* comment")
}

// quoted skips a string constant or quoted identifier from its opening q
// at s.pos, where a doubled q stands for one, and with backslash escapes
// for an E'...' string.
func (s *scanner) quoted(q byte, backslash bool, what string) error {
	line := s.line
	s.pos++
	for s.pos < len(s.src) {
		c := s.src[s.pos]
		s.pos++
		switch {
		case c == '\n':
			s.line++
		case c == '\\' && backslash && s.pos < len(s.src):
			if s.src[s.pos] == '\n' {
				s.line++
			}
			s.pos++
		case c == q:
			if s.pos < len(s.src) && s.src[s.pos] == q {
				s.pos++
				continue
			}
			return nil
		}
	}
	return lineError(s.source, line, "unterminated %s", what)
}

// dollar scans what starts with $: a positional parameter, a
// dollar-quoted string ($$...$$ or $tag$...$tag$), or a lone $.
func (s *scanner) dollar() (tokenKind, string, error) {
	start := s.pos
	s.pos++
	if s.pos < len(s.src) && isDigit(s.src[s.pos]) {
		for s.pos < len(s.src) && isDigit(s.src[s.pos]) {
			s.pos++
		}
		return tokPositional, string(s.src[start+1 : s.pos]), nil
	}
	tagEnd := s.pos
	for tagEnd < len(s.src) && isWordByte(s.src[tagEnd]) && s.src[tagEnd] != '$' {
		tagEnd++
	}
	if tagEnd == len(s.src) || s.src[tagEnd] != '$' {
		return tokText, "", nil
	}
	delim := s.src[start : tagEnd+1]
	bodyStart := tagEnd + 1
	n := bytes.Index(s.src[bodyStart:], delim)
	if n < 0 {
		return 0, "", lineError(s.source, s.line, "unterminated dollar-quoted string %s", delim)
	}
	s.line += bytes.Count(s.src[bodyStart:bodyStart+n], []byte("\n"))
	s.pos = bodyStart + n + len(delim)
	return tokText, "", nil
}

// colon scans what starts with ':': a :: cast, a :name parameter, or a
// lone colon. A colon right after a word or number, or before a digit, is
// an array slice's (a[1:2], a[lo:hi]), not a parameter.
func (s *scanner) colon() (tokenKind, string) {
	start := s.pos
	s.pos++
	switch {
	case s.has(":"):
		s.pos++
		return tokText, ""
	case start > 0 && isWordByte(s.src[start-1]):
		return tokText, ""
	case s.pos == len(s.src) || !isNameStart(s.src[s.pos]):
		return tokText, ""
	}
	for {
		for s.pos < len(s.src) && (isNameStart(s.src[s.pos]) || isDigit(s.src[s.pos])) {
			s.pos++
		}
		if !s.has(".") || s.pos+1 == len(s.src) || !isNameStart(s.src[s.pos+1]) {
			return tokParam, string(s.src[start+1 : s.pos])
		}
		s.pos++
	}
}

// isWordByte reports whether c may continue an identifier, keyword or
// number: PostgreSQL's identifiers may hold $ and any non-ASCII letter.
func isWordByte(c byte) bool {
	return isNameStart(c) || isDigit(c) || c == '$' || c >= 0x80
}

// isNameStart reports whether c may start a parameter's name or a part of
// one (Avro names are ASCII).
func isNameStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
