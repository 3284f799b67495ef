package masking

import (
	"bytes"
	"regexp"
)

// Class groups detectors by what they find.
type Class int

const (
	// Credential detectors find keys, tokens, private keys and passwords;
	// they run on every response.
	Credential Class = iota + 1
	// Personal detectors find personal data (e-mail addresses, card numbers,
	// ...); they run where a policy asks for them.
	Personal
)

// Detector group names accepted in a Profile's detector list besides
// single detector names.
const (
	GroupCredentials = "credentials"
	GroupPersonal    = "personal"
	GroupAll         = "all"
)

// span is a half-open byte range of a text to mask.
type span struct {
	start, end int
	det        int32
}

// detector is one compiled detector.
type detector struct {
	name  string
	class Class
	// keywords trigger the detector (lower case); none means it scans every text.
	keywords []string
	// re is run on a window around each keyword hit (or on the whole text).
	re *regexp.Regexp
	// group is the submatch to mask; 0 masks the whole match.
	group int
	// back and maxLen bound the window: from back bytes before the keyword
	// start to maxLen bytes after it. maxLen also bounds a match's length.
	back, maxLen int
	// entropy is the minimum Shannon entropy (bits per byte) of the masked span.
	entropy float64
	// find, when set, replaces re: it inspects text around a keyword hit
	// ending at end (or the whole text when the detector has no keywords) and
	// appends spans.
	find func(text []byte, kwStart, kwEnd int, dst []span) []span
	// minDigits lets a detector without keywords skip texts with fewer digits.
	minDigits int
	// needs lets a detector without keywords skip texts that lack a byte
	// class every match holds (needDash, needUpper).
	needs uint8
	// custom is true for detectors declared in policy files.
	custom bool
	// partOf names the detector this one belongs to: it runs whenever that
	// one is enabled, masks with its label, and has no name of its own in
	// profiles.
	partOf string
	// label is the replacement text, "[MASKED:name]".
	label []byte
}

// builtinSpecs lists every built-in detector. Regular expressions use
// bounded repetition so that a match never exceeds maxLen bytes.
func builtinDetectors() []*detector {
	re := regexp.MustCompile
	return []*detector{
		{name: "gcp_api_key", class: Credential, keywords: []string{"aiza"},
			re: re(`AIza[0-9A-Za-z_\-]{35}`), maxLen: 64},
		{name: "oauth_token", class: Credential, keywords: []string{"ya29."},
			re: re(`ya29\.[0-9A-Za-z_\-\.]{20,}`), maxLen: 4200},
		{name: "oauth_refresh_token", class: Credential, keywords: []string{"1//0"},
			re: re(`1//0[0-9A-Za-z_\-]{20,}`), maxLen: 1100},
		{name: "oauth_client_secret", class: Credential, keywords: []string{"gocspx-"},
			re: re(`GOCSPX-[0-9A-Za-z_\-]{28}`), maxLen: 64},
		{name: "private_key", class: Credential, keywords: []string{"private key"},
			re:   re(`-----BEGIN[ A-Z0-9_\-]{0,60}PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]{16,}?-----END[ A-Z0-9_\-]{0,60}PRIVATE KEY(?: BLOCK)?-----|(?:[A-Za-z0-9+/=\s:,\-]|\\[nrt])*)`),
			back: 72, maxLen: 8400},
		// A key whose head was cut away (a slice of an object, of serial
		// output) is found by its END line: the base64 block before it.
		{name: "private_key_tail", partOf: "private_key", class: Credential, keywords: []string{"-----end"},
			find: findKeyTail, back: keyTailBack, maxLen: 128},
		{name: "service_account_key", class: Credential, keywords: []string{`"private_key"`},
			re: re(`"private_key"\s*:\s*"(-----BEGIN[^"]*)"?`), group: 1, maxLen: 8400},
		{name: "jwt", class: Credential, keywords: []string{"eyj"},
			re: re(`\beyJ[0-9A-Za-z_\-]{8,}\.eyJ[0-9A-Za-z_\-]{8,}\.[0-9A-Za-z_\-]{8,}`), back: 1, maxLen: 8192},
		{name: "aws_access_key_id", class: Credential, keywords: []string{"akia", "asia", "abia", "acca"},
			re: re(`\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b`), back: 1, maxLen: 24},
		{name: "aws_secret_access_key", class: Credential, keywords: []string{"aws"},
			re: re(`(?i)aws.{0,20}?(?:secret|private|key).{0,20}?['"]?\s*[:=]\s*['"]?([0-9A-Za-z/+]{40})\b`), group: 1, maxLen: 120},
		{name: "github_token", class: Credential, keywords: []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_"},
			re: re(`\bgh[pousr]_[0-9A-Za-z]{36,}`), back: 1, maxLen: 260},
		{name: "github_fine_grained_token", class: Credential, keywords: []string{"github_pat_"},
			re: re(`github_pat_[0-9A-Za-z_]{82}`), maxLen: 96},
		{name: "gitlab_token", class: Credential, keywords: []string{"glpat-"},
			re: re(`glpat-[0-9A-Za-z_\-]{20,64}`), maxLen: 72},
		{name: "slack_token", class: Credential, keywords: []string{"xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xoxe-"},
			re: re(`xox[bpares]-[0-9A-Za-z\-]{10,}`), maxLen: 260},
		{name: "slack_webhook", class: Credential, keywords: []string{"hooks.slack.com"},
			re: re(`hooks\.slack\.com/(?:services|workflows)/[0-9A-Za-z_/\-]{20,128}`), maxLen: 160},
		{name: "stripe_key", class: Credential, keywords: []string{"sk_live_", "sk_test_", "rk_live_", "rk_test_"},
			re: re(`[sr]k_(?:live|test)_[0-9A-Za-z]{16,}`), maxLen: 270},
		{name: "sendgrid_key", class: Credential, keywords: []string{"sg."},
			re: re(`SG\.[0-9A-Za-z_\-]{22}\.[0-9A-Za-z_\-]{43}`), maxLen: 72},
		{name: "npm_token", class: Credential, keywords: []string{"npm_"},
			re: re(`\bnpm_[0-9A-Za-z]{36}\b`), back: 1, maxLen: 42},
		{name: "pypi_token", class: Credential, keywords: []string{"pypi-ageichlwas5vcmc"},
			re: re(`pypi-AgEIcHlwaS5vcmc[0-9A-Za-z_\-]{50,}`), maxLen: 1100},
		{name: "openai_key", class: Credential, keywords: []string{"t3blbkfj"},
			re: re(`sk-[0-9A-Za-z_\-]{0,160}T3BlbkFJ[0-9A-Za-z_\-]{20,160}`), back: 170, maxLen: 200},
		{name: "anthropic_key", class: Credential, keywords: []string{"sk-ant-"},
			re: re(`sk-ant-[a-z]{2,8}\d{2}-[0-9A-Za-z_\-]{80,120}`), maxLen: 140},
		{name: "azure_storage_key", class: Credential, keywords: []string{"accountkey="},
			re: re(`(?i)AccountKey=([0-9A-Za-z+/]{86}==)`), group: 1, maxLen: 110},
		{name: "hashicorp_vault_token", class: Credential, keywords: []string{"hvs."},
			re: re(`\bhvs\.[0-9A-Za-z_\-]{90,200}`), back: 1, maxLen: 210},
		{name: "digitalocean_token", class: Credential, keywords: []string{"dop_v1_"},
			re: re(`dop_v1_[0-9a-f]{64}`), maxLen: 72},
		{name: "bearer_token", class: Credential, keywords: []string{"bearer "},
			re: re(`(?i)\bbearer\s+([0-9A-Za-z\-._~+/]{20,}=*)`), group: 1, back: 1, maxLen: 4200},
		{name: "password_assignment", class: Credential, keywords: []string{"password", "passwd"},
			re: re(`(?i)(?:password|passwd)[A-Za-z_]{0,12}['"]?\s{0,4}(?:=|:=|:)\s{0,4}['"]?([^\s'"\x60]{6,256})`), group: 1, maxLen: 300},
		{name: "generic_secret", class: Credential, keywords: []string{"api_key", "apikey", "api-key", "secret_key", "client_secret", "access_token", "auth_token", "secret="},
			re: re(`(?i)(?:api[_\-]?key|secret[_\-]?key|client[_\-]?secret|access[_\-]?token|auth[_\-]?token|secret)['"]?\s{0,4}[:=]\s{0,4}['"]?([0-9A-Za-z_\-./+=]{16,512})`), group: 1, entropy: 3.0, back: 8, maxLen: 560},
		{name: "connection_string_password", class: Credential, keywords: []string{"://"},
			find: findConnectionPassword, back: 32, maxLen: 512},
		{name: "email", class: Personal, keywords: []string{"@"},
			find: findEmail, back: 64, maxLen: 320},
		{name: "credit_card", class: Personal, find: findCards, maxLen: 24, minDigits: 15},
		{name: "iban", class: Personal, find: findIBANs, maxLen: 48, minDigits: 4, needs: needUpper},
		{name: "us_ssn", class: Personal, find: findSSNs, maxLen: 12, minDigits: 9, needs: needDash},
	}
}

func isAlnum(b byte) bool {
	return b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// findConnectionPassword finds scheme://user:password@host and masks the password.
func findConnectionPassword(text []byte, kwStart, kwEnd int, dst []span) []span {
	// The scheme must be letters right before "://".
	if kwStart == 0 || !isAlnum(text[kwStart-1]) {
		return dst
	}
	colon := -1
	end := min(len(text), kwEnd+400)
	for i := kwEnd; i < end; i++ {
		switch connClass[text[i]] {
		case connOther:
		case connColon:
			if colon < 0 {
				colon = i
			}
		case connAt:
			if colon > kwEnd && i > colon+1 {
				return append(dst, span{start: colon + 1, end: i})
			}
			return dst
		default:
			return dst
		}
	}
	return dst
}

// Byte classes of findConnectionPassword.
const (
	connOther = iota
	connColon
	connAt
	connEnd // a byte that ends the user:password part unmasked
)

var connClass = func() (t [256]uint8) {
	t[':'] = connColon
	t['@'] = connAt
	for _, c := range []byte{'/', '?', '#', ' ', '\t', '\r', '\n', '"', '\'', '<', '>', '\\'} {
		t[c] = connEnd
	}
	return t
}()

func isEmailLocal(b byte) bool {
	return isAlnum(b) || b == '.' || b == '_' || b == '%' || b == '+' || b == '-'
}

func isDomainChar(b byte) bool { return isAlnum(b) || b == '.' || b == '-' }

var serviceAccountSuffix = []byte("gserviceaccount.com")

// findEmail finds an e-mail address around the "@" at kwStart. A
// service account's address is an identifier and is never reported.
func findEmail(text []byte, kwStart, kwEnd int, dst []span) []span {
	s := kwStart
	for s > 0 && kwStart-s < 64 && isEmailLocal(text[s-1]) {
		s--
	}
	for s < kwStart && text[s] == '.' {
		s++
	}
	if s == kwStart {
		return dst
	}
	e := kwEnd
	for e < len(text) && e-kwEnd < 253 && isDomainChar(text[e]) {
		e++
	}
	for e > kwEnd && (text[e-1] == '.' || text[e-1] == '-') {
		e--
	}
	dom := text[kwEnd:e]
	dot := bytes.LastIndexByte(dom, '.')
	if dot <= 0 || len(dom)-dot-1 < 2 {
		return dst
	}
	for _, c := range dom[dot+1:] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return dst
		}
	}
	if len(dom) >= len(serviceAccountSuffix) && bytes.EqualFold(dom[len(dom)-len(serviceAccountSuffix):], serviceAccountSuffix) {
		if len(dom) == len(serviceAccountSuffix) || dom[len(dom)-len(serviceAccountSuffix)-1] == '.' {
			return dst
		}
	}
	return append(dst, span{start: s, end: e})
}

// luhn reports whether the digits pass the Luhn check.
func luhn(d []byte) bool {
	sum := 0
	double := false
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if double {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}

// cardBrand reports whether digits have the length and prefix of a major
// card brand (Visa, Mastercard, American Express, Discover).
func cardBrand(d []byte) bool {
	switch len(d) {
	case 15:
		return d[0] == '3' && (d[1] == '4' || d[1] == '7')
	case 16:
		switch {
		case d[0] == '4':
			return true
		case d[0] == '5' && d[1] >= '1' && d[1] <= '5':
			return true
		case d[0] == '2':
			p := int(d[1]-'0')*100 + int(d[2]-'0')*10 + int(d[3]-'0')
			return p >= 221 && p <= 720
		case d[0] == '6' && (bytes.HasPrefix(d, []byte("6011")) || d[1] == '5'):
			return true
		}
	}
	return false
}

// findCards finds card numbers: 15 or 16 digits, optionally grouped by single
// spaces or dashes, with a brand prefix and a valid Luhn check digit.
func findCards(text []byte, _, _ int, dst []span) []span {
	var digits [20]byte
	for i := 0; i < len(text); i++ {
		if !isDigit(text[i]) || (i > 0 && (isAlnum(text[i-1]) || text[i-1] == '.' || text[i-1] == '-')) {
			continue
		}
		n := 0
		j := i
		var sep byte
		for j < len(text) && n < 20 {
			c := text[j]
			if isDigit(c) {
				digits[n] = c
				n++
				j++
				continue
			}
			if (c == ' ' || c == '-') && j+1 < len(text) && isDigit(text[j+1]) && (sep == 0 || sep == c) {
				sep = c
				j++
				continue
			}
			break
		}
		end := j
		if (n == 15 || n == 16) && (end == len(text) || !(isAlnum(text[end]) || text[end] == '.' && end+1 < len(text) && isDigit(text[end+1]))) {
			if cardBrand(digits[:n]) && luhn(digits[:n]) {
				dst = append(dst, span{start: i, end: end})
			}
		}
		i = end
	}
	return dst
}

// findSSNs finds US social security numbers written ddd-dd-dddd with valid
// area, group and serial numbers.
func findSSNs(text []byte, _, _ int, dst []span) []span {
	for i := 0; i+11 <= len(text); i++ {
		t := text[i : i+11]
		if t[3] != '-' || t[6] != '-' {
			continue
		}
		if !(isDigit(t[0]) && isDigit(t[1]) && isDigit(t[2]) && isDigit(t[4]) && isDigit(t[5]) &&
			isDigit(t[7]) && isDigit(t[8]) && isDigit(t[9]) && isDigit(t[10])) {
			continue
		}
		if i > 0 && (isAlnum(text[i-1]) || text[i-1] == '-') || i+11 < len(text) && (isAlnum(text[i+11]) || text[i+11] == '-') {
			continue
		}
		area := string(t[0:3])
		if area == "000" || area == "666" || t[0] == '9' || string(t[4:6]) == "00" || string(t[7:11]) == "0000" {
			continue
		}
		dst = append(dst, span{start: i, end: i + 11})
	}
	return dst
}

// ibanLengths holds the IBAN length of common countries; others accept 15-34.
var ibanLengths = map[string]int{
	"AT": 20, "BE": 16, "CH": 21, "CZ": 24, "DE": 22, "DK": 18, "ES": 24, "FI": 18,
	"FR": 27, "GB": 22, "IE": 22, "IT": 27, "LU": 20, "NL": 18, "NO": 15, "PL": 28,
	"PT": 25, "SE": 24,
}

// findIBANs finds IBANs (two letters, two check digits, up to 30
// alphanumerics, optionally in groups of four separated by spaces) whose
// mod-97 checksum is 1.
func findIBANs(text []byte, _, _ int, dst []span) []span {
	var buf [34]byte
	for i := 0; i+15 <= len(text); i++ {
		if !(text[i] >= 'A' && text[i] <= 'Z' && text[i+1] >= 'A' && text[i+1] <= 'Z' && isDigit(text[i+2]) && isDigit(text[i+3])) {
			continue
		}
		if i > 0 && isAlnum(text[i-1]) {
			continue
		}
		n := 0
		j := i
		for j < len(text) && n < 34 {
			c := text[j]
			if isDigit(c) || c >= 'A' && c <= 'Z' {
				buf[n] = c
				n++
				j++
				continue
			}
			if c == ' ' && n%4 == 0 && j+1 < len(text) && isAlnum(text[j+1]) {
				j++
				continue
			}
			break
		}
		if j < len(text) && isAlnum(text[j]) {
			continue
		}
		want, known := ibanLengths[string(buf[:2])]
		if known && n != want || !known && (n < 15 || n > 34) {
			continue
		}
		if ibanValid(buf[:n]) {
			dst = append(dst, span{start: i, end: j})
			i = j
		}
	}
	return dst
}

func ibanValid(s []byte) bool {
	rem := 0
	add := func(c byte) {
		if isDigit(c) {
			rem = (rem*10 + int(c-'0')) % 97
			return
		}
		v := int(c-'A') + 10
		rem = (rem*100 + v) % 97
	}
	for _, c := range s[4:] {
		add(c)
	}
	for _, c := range s[:4] {
		add(c)
	}
	return rem == 1
}

// keyTailBack bounds how far before an END line findKeyTail looks for the
// key's base64 body (an 8192-bit RSA key in PEM is about 6.5 KB).
const keyTailBack = 8400

// keyTailMinBody is the fewest base64 characters before an END line that
// make it a key: a shorter block is a mention, not a key.
const keyTailMinBody = 40

var keyEndRE = regexp.MustCompile(`^-----END[ A-Z0-9_\-]{0,60}PRIVATE KEY(?: BLOCK)?-----`)

// findKeyTail finds "-----END ... PRIVATE KEY-----" and masks the base64
// block before it, line breaks (raw or escaped as \n) included, with its
// BEGIN line when it is there: a key missing its head is still a key.
func findKeyTail(text []byte, kwStart, kwEnd int, dst []span) []span {
	m := keyEndRE.Find(text[kwStart:])
	if m == nil {
		return dst
	}
	end := kwStart + len(m)
	floor := max(0, kwStart-keyTailBack)
	i := kwStart
	body := 0
	for i > floor {
		c := text[i-1]
		switch {
		case isAlnum(c) || c == '+' || c == '/' || c == '=':
			body++
			i--
		case c == '\n' || c == '\r':
			i--
		case i >= 2 && text[i-2] == '\\' && (c == 'n' || c == 'r'):
			i -= 2
		case c == '\\' && i < len(text) && (text[i] == 'n' || text[i] == 'r'):
			// The backslash of an escape whose letter was counted as body.
			body--
			i--
		default:
			goto done
		}
	}
done:
	if body < keyTailMinBody {
		return dst
	}
	return append(dst, span{start: i, end: end})
}
