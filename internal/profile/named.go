package profile

import (
	"errors"
	"fmt"
)

// ErrNotFound is what a store of named profiles (pipeline.Profiles)
// returns, wrapped, for a name that names no profile.
var ErrNotFound = errors.New("profile not found")

// ReservedName is the folder under incoming/ that no stored profile may
// be called: incoming/retries/ holds the uploads of importctl
// retry-failures.
const ReservedName = "retries"

// CheckName says why name cannot name a stored profile: it is a file name
// (profiles/<name>.yaml) and a folder name (incoming/<name>/), so it must
// be 1 to 64 lower-case letters, digits, '-' or '_', start with a letter or
// digit, and not be ReservedName.
func CheckName(name string) error {
	ok := len(name) >= 1 && len(name) <= 64
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case (r == '-' || r == '_') && i > 0:
		default:
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("profile name %q: use 1 to 64 lower-case letters, digits, '-' or '_', starting with a letter or digit", name)
	}
	if name == ReservedName {
		return fmt.Errorf("profile name %q is reserved: incoming/%s/ holds the uploads of importctl retry-failures", name, name)
	}
	return nil
}

// CheckNamed checks data as the profile stored under name: name must pass
// CheckName, data must pass Check, and the profile must call itself name
// (its name: key), so that a batch's stored profile names the profile it
// ran under.
func CheckNamed(name string, data []byte) (*Profile, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	p, err := Check(data)
	if err != nil {
		return nil, err
	}
	if p.Name() != name {
		return nil, fmt.Errorf("name: the profile calls itself %q; set name: %s in it to store it as %s", p.Name(), name, name)
	}
	return p, nil
}

// Check parses a stored profile and compiles it, as the splitter and the
// workers will: a profile that passes Check is one they can run with.
func Check(data []byte) (*Profile, error) {
	p, err := Parse(data)
	if err != nil {
		return nil, err
	}
	if _, err := p.Compile(); err != nil {
		return nil, err
	}
	return p, nil
}
