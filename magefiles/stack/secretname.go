package stack

// SecretLooking says whether a variable named name carries a secret by the
// rule the production file keeps: a name ending like a secret's (PASSWORD,
// TOKEN, API_KEY, ...; never its _FILE form), or a value (nil when unknown)
// that is a URL with a password. Other files a deploy reads, such as the
// Dockerfile's ARG and ENV, are held to the same rule.
func SecretLooking(name string, value *string) bool { return secretLooking(name, value) }
