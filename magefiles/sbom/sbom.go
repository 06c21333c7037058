// Package sbom makes the service image's software bill of materials, a
// CycloneDX document of the Go modules compiled into its binary, from the
// binary's own build information (what was linked, not what go.mod lists),
// and keeps it in the registry as an OCI artifact whose subject is the
// image, so it stays attached to the digest wherever that digest goes in
// the repository.
package sbom

import (
	"bytes"
	"debug/buildinfo"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	packageurl "github.com/package-url/packageurl-go"
)

// MediaType is the SBOM document's media type, and the artifact type of its
// manifest in the registry.
const MediaType = "application/vnd.cyclonedx+json"

// specVersion is the CycloneDX version written: 1.6 is what scanners read
// today.
const specVersion = cdx.SpecVersion1_6

// Options describe what the binary does not say about itself.
type Options struct {
	// Created is the document's timestamp: the image's creation (commit)
	// time, so the same image always gets the same document. Omitted when zero.
	Created time.Time
	// Version is the application's version (the image's version label),
	// for a main module the build information calls "(devel)", as every
	// build from a checkout is.
	Version string
}

// FromBinary reads the build information of the Go binary bin and returns
// its SBOM: the main module as the subject, each linked module (its
// replacement when replaced, as that is what was compiled) and the Go
// standard library as components. The same binary and options give the same
// document, byte for byte.
func FromBinary(bin []byte, o Options) (*cdx.BOM, error) {
	info, err := buildinfo.Read(bytes.NewReader(bin))
	if err != nil {
		return nil, fmt.Errorf("read the binary's build information: %w", err)
	}
	return FromBuildInfo(info, o), nil
}

// FromBuildInfo is FromBinary for build information already read.
func FromBuildInfo(info *debug.BuildInfo, o Options) *cdx.BOM {
	bom := cdx.NewBOM()
	mainName := info.Main.Path
	if mainName == "" {
		mainName = info.Path
	}
	version := info.Main.Version
	if (version == "" || version == "(devel)") && o.Version != "" {
		version = o.Version
	}
	main := cdx.Component{
		Type:       cdx.ComponentTypeApplication,
		Name:       mainName,
		Version:    version,
		PackageURL: purl(mainName, version),
		Properties: buildProperties(info),
	}
	main.BOMRef = main.PackageURL

	components := []cdx.Component{stdlib(info.GoVersion)}
	for _, m := range info.Deps {
		components = append(components, moduleComponent(m))
	}
	refs := make([]string, len(components))
	for i, c := range components {
		refs[i] = c.BOMRef
	}
	bom.Metadata = &cdx.Metadata{Component: &main}
	if !o.Created.IsZero() {
		bom.Metadata.Timestamp = o.Created.UTC().Format(time.RFC3339)
	}
	bom.Components = &components
	// The build information lists what was linked, not who needs whom: the
	// application depends on all of it.
	bom.Dependencies = &[]cdx.Dependency{{Ref: main.BOMRef, Dependencies: &refs}}
	return bom
}

func moduleComponent(m *debug.Module) cdx.Component {
	used := m
	var props []cdx.Property
	if m.Replace != nil {
		used = m.Replace
		props = append(props, cdx.Property{Name: "go:replaces", Value: m.Path + "@" + m.Version})
	}
	if used.Sum != "" {
		props = append(props, cdx.Property{Name: "go:sum", Value: used.Sum})
	}
	c := cdx.Component{
		Type:       cdx.ComponentTypeLibrary,
		Name:       used.Path,
		Version:    used.Version,
		PackageURL: purl(used.Path, used.Version),
		Scope:      cdx.ScopeRequired,
	}
	c.BOMRef = c.PackageURL
	if len(props) > 0 {
		c.Properties = &props
	}
	return c
}

// stdlib is the Go standard library the binary was built with: its
// vulnerabilities are the binary's too.
func stdlib(goVersion string) cdx.Component {
	v := "v" + strings.TrimPrefix(goVersion, "go")
	c := cdx.Component{
		Type:       cdx.ComponentTypeLibrary,
		Name:       "stdlib",
		Version:    goVersion,
		PackageURL: purl("stdlib", v),
		Scope:      cdx.ScopeRequired,
	}
	c.BOMRef = c.PackageURL
	return c
}

// buildProperties are the build settings (GOOS, GOARCH, CGO_ENABLED,
// -trimpath, -ldflags ...) and the Go release.
func buildProperties(info *debug.BuildInfo) *[]cdx.Property {
	props := []cdx.Property{{Name: "go:version", Value: info.GoVersion}}
	for _, s := range info.Settings {
		props = append(props, cdx.Property{Name: "go:build:" + s.Key, Value: s.Value})
	}
	return &props
}

// purl is the package URL of a Go module version (pkg:golang/path@version).
func purl(path, version string) string {
	ns, name := "", path
	if i := strings.LastIndex(path, "/"); i >= 0 {
		ns, name = path[:i], path[i+1:]
	}
	return packageurl.NewPackageURL(packageurl.TypeGolang, ns, name, version, nil, "").ToString()
}

// Encode writes bom as CycloneDX JSON, indented.
func Encode(bom *cdx.BOM) ([]byte, error) {
	var buf bytes.Buffer
	enc := cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON).SetPretty(true).SetEscapeHTML(false)
	if err := enc.EncodeVersion(bom, specVersion); err != nil {
		return nil, fmt.Errorf("encode the SBOM: %w", err)
	}
	return buf.Bytes(), nil
}

// Decode reads a CycloneDX JSON document.
func Decode(doc []byte) (*cdx.BOM, error) {
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(doc), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		return nil, fmt.Errorf("read the SBOM: %w", err)
	}
	return &bom, nil
}

// Module is a module an SBOM lists.
type Module struct{ Path, Version string }

// Modules lists the library components of bom (the standard library as
// "stdlib"), in document order.
func Modules(bom *cdx.BOM) []Module {
	if bom.Components == nil {
		return nil
	}
	var ms []Module
	for _, c := range *bom.Components {
		if c.Type == cdx.ComponentTypeLibrary {
			ms = append(ms, Module{Path: c.Name, Version: c.Version})
		}
	}
	return ms
}

// VersionOf is the version of module path in bom; "" when it is not there.
func VersionOf(bom *cdx.BOM, path string) string {
	for _, m := range Modules(bom) {
		if m.Path == path {
			return m.Version
		}
	}
	return ""
}
