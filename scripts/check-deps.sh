#!/usr/bin/env bash
# Checks that building cae reads nothing from the system that scripts/install-deps.sh does not
# install. CI machines carry more than a fresh Debian 12 does, so a missing package can pass there
# and fail elsewhere (ocl-icd-opencl-dev did: libdnnl-dev only Recommends it, install-deps
# installs without Recommends, and dnnl-config.cmake needs it).
#
#   scripts/check-deps.sh [BUILD_DIR]      configure and build cae into a fresh BUILD_DIR
#                                          (default build-depcheck) under strace, then check
#   scripts/check-deps.sh --main BUILD_DIR configure and build the main build (Release, as
#                                          scripts/build.sh does) into BUILD_DIR, which must not
#                                          exist yet, under strace, then check: scripts/test.sh
#                                          uses it on a fresh clone, so that CI builds once;
#                                          exit status 3, having done nothing, where BUILD_DIR
#                                          exists
#   scripts/check-deps.sh --files PATH...  check only the given files (no build)
#
# Every file the build opens for reading or executes, outside the repository, BUILD_DIR, /tmp,
# /proc, /sys and /dev, must belong (dpkg -S) to a package of the install closure: the packages
# `scripts/install-deps.sh --list` names, those every Debian system has (Essential: yes or
# Priority: required), and all they Depend or Pre-Depend on, transitively. Recommends and Suggests
# are left out, as install-deps installs with --no-install-recommends; of alternatives (a | b) the
# closure takes the one apt takes on a fresh system: one already there, else the first. A file no
# package owns fails too (something installed by hand, a pyenv, a toolkit in /usr/local), but for
# those in NOT_NEEDED. Existence checks (stat) are not traced: what CMake finds it then reads,
# and what a compiler finds it opens.
#
# CAE_DEPS_EXCLUDE="pkg ..." drops packages from install-deps' list, to show the check failing.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'check-deps: %s\n' "$*"; }
die() {
  printf 'check-deps: error: %s\n' "$*" >&2
  exit 1
}

# Files the build reads when they are there and does without when not, whoever owns them.
# The search path of ld.so and ld (the libraries found through it are checked themselves), and
# ldconfig's cache of it (generated, no owner).
declare -A NOT_NEEDED=(
  [/etc/ld.so.conf]="search path of ld.so and ld"
  [/etc/ld.so.conf.d/*.conf]="search path of ld.so and ld"
  [/etc/ld.so.cache]="ldconfig's cache of the search path"
  # libssl (through cpp-httplib) reads its configuration when a test binary linked with it runs
  # at build time (gtest_discover_tests lists test_serve's tests), and runs on defaults without.
  [/etc/ssl/openssl.cnf]="libssl's optional configuration"
  [/usr/lib/ssl/openssl.cnf]="libssl's optional configuration"
)

# Where the build may read what it likes: the sources, its own output, scratch space, the kernel.
skip_dirs=("$(pwd -P)" /tmp /proc /sys /dev)
[[ -n "${TMPDIR:-}" && -d "$TMPDIR" ]] && skip_dirs+=("$(cd "$TMPDIR" && pwd -P)")
# The top directories merged /usr made links into /usr (all of them on Debian 12).
merged=()
for d in bin sbin lib lib32 lib64 libx32; do
  [[ "$(readlink "/$d" || true)" == "usr/$d" ]] && merged+=("$d")
done
merged_re="^/usr/($(IFS='|'; echo "${merged[*]:-/}"))/"

# The packages of the install closure, one a line, on stdout.
install_closure() {
  local listed base roots excluded
  listed=$(scripts/install-deps.sh --list)
  excluded=" ${CAE_DEPS_EXCLUDE:-} "
  listed=$(printf '%s\n' "$listed" | while read -r p; do
    [[ "$excluded" == *" $p "* ]] || printf '%s\n' "$p"
  done)
  base=$(dpkg-query -W -f='${db:Status-Abbrev}\t${Package}\t${Essential}\t${Priority}\n' |
    awk -F '\t' '$1 ~ /^ii/ && ($3 == "yes" || $4 == "required") { print $2 }')
  mapfile -t roots < <(printf '%s\n%s\n' "$listed" "$base" | sort -u)
  # apt-cache prints, for each package reached: its name, then a line per dependency ("|" when
  # the next line is another alternative of it; <name> for a virtual package), each followed by
  # the packages that provide it, indented by four spaces.
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances "${roots[@]}" |
    awk -v roots="${roots[*]}" -v base="$base" -v installed="$(dpkg-query -W \
      -f='${db:Status-Abbrev} ${Package}\n' | awk '$1 == "ii" { print $2 }')" '
      function bare(name) { gsub(/[<>]/, "", name); sub(/:.*/, "", name); return name }
      BEGIN {
        n = split(roots, r, " "); for (i = 1; i <= n; i++) root[r[i]] = 1
        n = split(base, r, "\n"); for (i = 1; i <= n; i++) present[r[i]] = 1
        for (p in root) present[p] = 1
        n = split(installed, r, "\n"); for (i = 1; i <= n; i++) here[r[i]] = 1
      }
      /^[^ ]/ { pkg = bare($0); open_group = 0; next }
      /^ [ |](Depends|PreDepends): / {
        if (!open_group) { groups[pkg]++; alt = 0 }
        g = pkg SUBSEP groups[pkg]
        name = $2; alt++; nalt[g] = alt
        altname[g, alt] = bare(name); virtual[g, alt] = (name ~ /^</)
        open_group = (substr($0, 2, 1) == "|")
        next
      }
      /^    [^ ]/ { prov[g, alt] = prov[g, alt] " " bare($1); next }
      # The packages that can satisfy alternative a of group g.
      function candidates(g, a) {
        if (!virtual[g, a]) return altname[g, a]
        return substr(prov[g, a], 2)
      }
      function add(p) { if (!(p in closure)) { closure[p] = 1; queue[++tail] = p } }
      END {
        for (p in root) add(p)
        for (head = 1; head <= tail; head++) {
          p = queue[head]
          for (k = 1; k <= groups[p]; k++) {
            g = p SUBSEP k; chosen = ""
            for (a = 1; a <= nalt[g] && chosen == ""; a++) {
              n = split(candidates(g, a), c, " ")
              for (i = 1; i <= n; i++) if (c[i] in present) { chosen = c[i]; break }
            }
            if (chosen != "") { add(chosen); continue }
            # None there yet: apt installs the first alternative; of a virtual one, take the
            # provider this machine has, else the first listed.
            n = split(candidates(g, 1), c, " ")
            for (i = 1; i <= n; i++) if (c[i] in here) { chosen = c[i]; break }
            if (chosen == "" && n > 0) chosen = c[1]
            if (chosen != "") add(chosen)
          }
        }
        for (p in closure) print p
      }' | sort
}

# Prints "PATH<TAB>OWNER,OWNER" for each path on stdin (OWNER empty when none), looking a path
# up under both names merged /usr gives it: dpkg records /lib/x86_64-linux-gnu/libc.so.6 while
# the kernel reports /usr/lib/x86_64-linux-gnu/libc.so.6.
owners_of() {
  local paths
  paths=$(cat)
  {
    printf '%s\n' "$paths" | awk '{ print "P\t" $0 }'
    printf '%s\n' "$paths" |
      awk -v re="$merged_re" '{ print } $0 ~ re { print substr($0, 5) }' |
      xargs -r -d '\n' dpkg-query -S 2>/dev/null | grep -v '^diversion by ' |
      awk '{ i = index($0, ": "); print "O\t" substr($0, i + 2) "\t" substr($0, 1, i - 1) }' || true
  } | awk -F '\t' -v re="$merged_re" '
    function canon(p) { return ("/usr" p) ~ re ? "/usr" p : p }
    $1 == "P" { order[++n] = $2; next }
    { k = canon($2); m = split($3, o, ", ")
      for (i = 1; i <= m; i++) {
        sub(/:.*/, "", o[i])  # the architecture
        if ((k, o[i]) in seen) continue
        seen[k, o[i]] = 1; owner[k] = owner[k] (owner[k] == "" ? "" : ",") o[i]
      } }
    END { for (i = 1; i <= n; i++) print order[i] "\t" owner[order[i]] }'
}

# Checks the files on stdin (absolute, their directories' links resolved) against the install
# closure; writes every file and its owners to the report $1, prints the verdict and returns 1
# when a file fails.
check_files() {
  local report=$1 files f pattern closure owned bad
  files=$(while read -r f; do
    for pattern in "${!NOT_NEEDED[@]}"; do
      # shellcheck disable=SC2053  # the pattern is a glob
      [[ "$f" == $pattern ]] && continue 2
    done
    printf '%s\n' "$f"
  done)
  closure=$(install_closure)
  owned=$(owners_of <<<"$files")
  bad=$(awk -F '\t' -v closure="$closure" '
    BEGIN { n = split(closure, c, "\n"); for (i = 1; i <= n; i++) in_closure[c[i]] = 1 }
    {
      m = split($2, o, ",")
      if (m == 0) { print $1 " -> no package owns it (installed by hand?)"; next }
      for (i = 1; i <= m; i++) if (o[i] in in_closure) next
      print $1 " -> " $2 " (not in the install closure)"
    }' <<<"$owned")
  {
    echo "# file<TAB>owning packages, for every system file the build read"
    printf '%s\n' "$owned"
  } >"$report"
  local nfiles npackages
  nfiles=$(grep -c . <<<"$owned" || true)
  npackages=$(cut -f2 <<<"$owned" | tr ',' '\n' | grep . | sort -u | wc -l)
  if [[ -n "$bad" ]]; then
    {
      printf 'check-deps: FAIL: %s of the %s system files the build read come from outside what\n' \
        "$(grep -c . <<<"$bad")" "$nfiles"
      printf 'check-deps: scripts/install-deps.sh installs (its list, their Depends/Pre-Depends):\n'
      printf '%s\n' "$bad" | sort | awk -F ' -> ' '
        { if (++seen[$2] <= 8) print "  " $0; else more[$2]++ }
        END { for (p in more) print "  ... and " more[p] " more files -> " p }'
      printf 'check-deps: list the package (or one that Depends on it) in scripts/install-deps.sh,'
      printf ' or keep the build off the file; every file and its owners: %s\n' "$report"
    } >&2
    return 1
  fi
  say "ok: $nfiles system files the build read, from $npackages packages, all installed by" \
    "scripts/install-deps.sh or what those depend on (list in $report)"
}

# Reads strace output on stdin; prints the system files it opened for reading or executed, each
# as "PATH_AS_ASKED<TAB>RESOLVED" (RESOLVED empty for executions: strace does not report it).
opened_files() {
  awk '
    # With -z strace prints each call whole; join split ones anyway, should it ever split them.
    / <unfinished \.\.\.>$/ { sub(/ <unfinished \.\.\.>$/, ""); pending[$1] = $0; next }
    /^[0-9]+ <\.\.\. [a-z0-9_]+ resumed>/ {
      pid = $1; rest = $0; sub(/^[0-9]+ <\.\.\. [a-z0-9_]+ resumed>/, "", rest)
      $0 = pending[pid] rest; delete pending[pid]
    }
    {
      call = $2; sub(/\(.*/, "", call)
      if (!match($0, /"[^"]*"/)) next
      path = substr($0, RSTART + 1, RLENGTH - 2); after = substr($0, RSTART + RLENGTH)
      if (call == "execve") { if (path ~ /^\//) print path "\t"; next }
      if (call != "open" && call != "openat" && call != "openat2") next
      if (after ~ /O_DIRECTORY/ || after ~ /O_WRONLY/) next
      if (!match(after, /\) = [0-9]+<.*>$/)) next
      resolved = substr(after, RSTART, RLENGTH); sub(/^\) = [0-9]+</, "", resolved)
      sub(/>$/, "", resolved)
      if (path !~ /^\// && call == "open") next  # relative to a working directory not shown
      if (path !~ /^\//) {  # relative to the directory strace -y shows as the first argument
        dir = substr($0, index($0, "(") + 1); dir = substr(dir, index(dir, "<") + 1)
        dir = substr(dir, 1, index(dir, ">") - 1); path = dir "/" path
      }
      print path "\t" resolved
    }' | sort -u
}

# Reads "PATH_AS_ASKED<TAB>RESOLVED" lines; prints every file that had to be there for the open
# to succeed, but for those under the directories given as arguments: each link of a chain of
# symbolic links, and the file it ends at. Links made by update-alternatives belong to no package
# and are skipped: the package that registered the alternative owns the file at the end.
needed_files() {
  local pairs dirs real
  pairs=$(cat)
  # The directory part of each asked path with its links and ../ resolved, in one realpath run.
  dirs=$(cut -f1 <<<"$pairs" | sed 's|/[^/]*$||; s|^$|/|' | sort -u)
  real=$(xargs -r -d '\n' realpath -m -- <<<"$dirs")
  local -A realdir=()
  local d r
  while IFS=$'\t' read -r d r; do realdir[$d]=$r; done < <(paste <(printf '%s\n' "$dirs") \
    <(printf '%s\n' "$real"))
  local asked resolved x t hops
  while IFS=$'\t' read -r asked resolved; do
    d=${asked%/*}
    x="${realdir[${d:-/}]%/}/${asked##*/}"
    [[ -z "$resolved" ]] && resolved=$(realpath -m -- "$x")
    hops=0
    while [[ "$x" != "$resolved" && -L "$x" && $hops -lt 40 ]]; do
      t=$(readlink -- "$x")
      [[ "$x" == /etc/alternatives/* || "$t" == /etc/alternatives/* ]] || printf '%s\n' "$x"
      [[ "$t" == /* ]] || t="${x%/*}/$t"
      x="$(realpath -m -- "${t%/*}")"
      x="${x%/}/${t##*/}"
      hops=$((hops + 1))
    done
    printf '%s\n' "$resolved"
  done <<<"$pairs" | awk -v skip="$(printf '%s\n' "$@")" '
    BEGIN { n = split(skip, s, "\n") }
    { for (i = 1; i <= n; i++) if (index($0 "/", s[i] "/") == 1) next; print }' |
    sort -u | while read -r x; do
      [[ -d "$x" ]] || printf '%s\n' "$x"
    done
}

# Files from PATH... as needed_files gives them.
given_files() {
  local f
  for f in "$@"; do
    [[ "$f" == /* ]] || die "--files takes absolute paths (got $f)"
    printf '%s\t\n' "$f"
  done | needed_files "${skip_dirs[@]}"
}

# The checker on planted files, so that a broken checker cannot pass a build: the compiler
# through its alternatives link and libc under its merged-/usr name must pass; a package taken
# out of the list, and a file no package owns, must fail by name.
self_test() {
  local out
  out=$(CAE_DEPS_EXCLUDE='' "$0" --files /usr/bin/c++ /lib/x86_64-linux-gnu/libc.so.6 2>&1) ||
    die "self-test: c++ and libc should pass: $out"
  if out=$(CAE_DEPS_EXCLUDE=strace "$0" --files "$(command -v strace)" /var/lib/dpkg/status 2>&1) ||
     ! grep -q 'strace -> strace (not in the install closure)' <<<"$out" ||
     ! grep -q 'status -> no package owns it' <<<"$out"; then
    die "self-test: strace left out of the list and dpkg's status file should fail: $out"
  fi
}

if [[ "${1:-}" == --files ]]; then
  shift
  (($# > 0)) || die "usage: $0 --files PATH..."
  given_files "$@" | check_files /dev/null
  exit
fi

main=0
if [[ "${1:-}" == --main ]]; then
  main=1
  shift
  (($# == 1)) || die "usage: $0 --main BUILD_DIR"
fi
(($# <= 1)) || die "usage: $0 [BUILD_DIR] | --main BUILD_DIR | --files PATH..."
build=${1:-build-depcheck}
if ((main)); then
  # Only a build traced from its first configure shows everything it reads (an incremental
  # build reads only what changed), and the main build is never emptied.
  # Refused with exit status 3, before anything is done, so that a caller can build as usual.
  if [[ -e "$build" ]]; then
    say "$build exists; --main traces a main build from its start"
    exit 3
  fi
else
  [[ "$build" != build && "$build" != "${BUILD_DIR:-build}" ]] ||
    die "$build is the main build; the check needs a build directory of its own"
  # It is emptied first: refuse anything that is not a build directory.
  [[ ! -e "$build" || -f "$build/CMakeCache.txt" || -z "$(ls -A -- "$build")" ]] ||
    die "$build is not a CMake build directory; not emptying it"
fi
command -v strace >/dev/null || die "strace not found (Debian strace: scripts/install-deps.sh)"
self_test

start=$SECONDS
rm -rf -- "$build"
mkdir -p -- "$build"
trace="$build/strace.log"
# shellcheck disable=SC2054  # the commas belong to strace's syscall list
tracer=(strace -f -qq -z -y --seccomp-bpf -e signal=none -s 0
        -e trace=open,openat,openat2,execve -o "$trace" --)
if ((main)); then
  # scripts/build.sh's configuration; LC_ALL=C as below.
  config=(-DCMAKE_BUILD_TYPE=Release)
  say "configuring and building the main build in $build under strace"
else
  # The configuration differs from scripts/build.sh's in three ways, none of which changes which
  # Debian packages it reads:
  #  - CUDA off, and CMake's probe for it too (cmake/cuda.cmake and check_language run nvcc from
  #    /usr/local/cuda unless CMAKE_CUDA_COMPILER is defined): the CUDA toolkit is no Debian
  #    package and is documented apart (docs/gpu.md). What is checked is the Debian build, so a
  #    read of /usr/local/cuda left in it fails as a file no package owns.
  #  - -O0: a compile reads the same headers and libraries at every optimisation level, and
  #    takes 40% less time than at -O3.
  #  - LC_ALL=C: the runner's locale would add glibc's and gettext's locale files, which any
  #    build does without.
  config=(-DCMAKE_BUILD_TYPE=Release -DCAE_CUDA=OFF -DCMAKE_CUDA_COMPILER=
          -DCMAKE_CXX_FLAGS_RELEASE="-O0 -DNDEBUG")
  say "configuring and building cae in $build under strace"
fi
LC_ALL=C "${tracer[@]}" cmake -S . -B "$build" "${config[@]}" >"$build/configure.log" 2>&1 ||
  { tail -n 20 "$build/configure.log" >&2; die "configure failed (log: $build/configure.log)"; }
mv "$trace" "$build/strace-configure.log"
LC_ALL=C "${tracer[@]}" cmake --build "$build" -j"$(nproc)" >"$build/build.log" 2>&1 ||
  { tail -n 20 "$build/build.log" >&2; die "build failed (log: $build/build.log)"; }
mv "$trace" "$build/strace-build.log"
say "built in $((SECONDS - start)) s; checking what it read"

# The main build compiles the CUDA backend where it finds the toolkit and cuDNN (cmake/cuda.cmake);
# they are no Debian packages and are documented apart (docs/gpu.md), so their directories are
# not checked, nor the time zone its compilers (cudafe++, cicc) read. A build without them
# (Debian's) cannot read there at all.
toolkit_dirs=()
cached() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }
if ((main)) && [[ "$(cached CAE_CUDA)" == ON ]]; then
  for d in "$(dirname "$(cached CUDAToolkit_BIN_DIR)")" "$(cached CAE_CUDNN_INCLUDE_DIR)" \
           "$(dirname "$(cached CAE_CUDNN_LIBRARY)")"; do
    [[ "$d" == /?* && -d "$d" ]] || die "CUDA is on in $build, but its directory '$d' is not"
    toolkit_dirs+=("$d" "$(realpath -- "$d")")
  done
  mapfile -t toolkit_dirs < <(printf '%s\n' "${toolkit_dirs[@]}" | sort -u)
  toolkit_dirs+=(/etc/localtime)
  say "the CUDA backend is built; not checked: ${toolkit_dirs[*]}"
fi
files=$(cat "$build/strace-configure.log" "$build/strace-build.log" | opened_files |
  needed_files "${skip_dirs[@]}" "$(cd "$build" && pwd -P)" "${toolkit_dirs[@]}")
# A trace that shows neither CMake's modules nor the compiler means the parsing broke, not that
# the build is clean.
if ! grep -q '^/usr/share/cmake-[0-9.]*/Modules/' <<<"$files" ||
   ! grep -q '/cc1plus$' <<<"$files"; then
  die "the trace in $build shows no CMake module or no cc1plus: strace output not understood"
fi
check_files "$build/check-deps-report.txt" <<<"$files"
say "done in $((SECONDS - start)) s"
