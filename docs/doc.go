// Package docs holds the repository's documentation (the markdown files
// beside this one, and the README at the root) and the tests that keep it
// true: every go tool mage command in a shell block names a real target
// with arguments and flags it takes, every block that claims to run names
// the test or script that runs it, and every relative link resolves. It
// has no code of its own.
package docs
