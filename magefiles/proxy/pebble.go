package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// PebbleFile is the override that runs pebble, Let's Encrypt's test CA,
// beside Traefik (proxy.ca: pebble): for a local environment and tests.
const PebbleFile = "deploy/proxy-pebble.yml"

// The files PebbleFiles writes, by name in its directory.
const (
	PebbleListenerCA = "listener-ca.pem" // what Traefik trusts pebble's HTTPS listener by
	PebbleCert       = "listener-cert.pem"
	PebbleKey        = "listener-key.pem"
	PebbleConfig     = "pebble.json"
	// PebbleRoot is where deploy:proxy keeps the root pebble signs
	// certificates with (a new one each time pebble starts): what a client
	// of the local environment trusts.
	PebbleRoot = "pebble-root.pem"
)

// pebbleListenerYears is how long the listener's certificates last: the
// directory keeps them, and a laptop should not have to think of them.
const pebbleListenerYears = 10

// PebbleFiles makes, in dir, pebble's configuration and the certificate of
// its HTTPS listeners (the ACME directory and the management interface),
// signed by a CA of its own that Traefik is told to trust; files already
// there are kept, so every deploy names the same Swarm configs. The key is
// a throwaway of a test CA's listener on an overlay network: it goes into
// a Swarm config, not a secret.
func PebbleFiles(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, PebbleConfig)); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pebble's files: %w", err)
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	until := now.AddDate(pebbleListenerYears, 0, 0)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pebble listener CA (deploy:proxy)"},
		NotBefore: now.Add(-time.Hour), NotAfter: until,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "pebble"},
		NotBefore: now.Add(-time.Hour), NotAfter: until,
		DNSNames: []string{"tasks.pebble", "pebble", "localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	config, err := json.Marshal(map[string]any{"pebble": map[string]any{
		"listenAddress": "0.0.0.0:14000", "managementListenAddress": "0.0.0.0:15000",
		"certificate": "/etc/pebble/" + PebbleCert, "privateKey": "/etc/pebble/" + PebbleKey,
		"httpPort": 80, "tlsPort": 443, "ocspResponderURL": "", "externalAccountBindingRequired": false,
	}})
	if err != nil {
		return err
	}
	// The configuration last: its presence says the others are there.
	var errs []error
	for _, f := range []struct {
		name string
		data []byte
	}{
		{PebbleListenerCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})},
		{PebbleCert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER})},
		{PebbleKey, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})},
		{PebbleConfig, config},
	} {
		errs = append(errs, os.WriteFile(filepath.Join(dir, f.name), f.data, 0o600))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("pebble's files: %w", err)
	}
	return nil
}
