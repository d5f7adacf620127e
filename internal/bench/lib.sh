# Shared by the benchmark scripts (sourced, not run).

# replace_section FILE BEGIN END BODY [HEADING]: put BODY between the marker
# lines BEGIN and END of FILE (a generated part of docs/benchmarks.md),
# adding the markers, under HEADING when given, at the end of FILE when it
# has none yet. The rest of FILE is kept as it is.
replace_section() {
	local file=$1 begin=$2 end=$3 body=$4 heading=${5:-} tmp
	if [ ! -f "$file" ] || ! grep -qF "$begin" "$file"; then
		if [ -n "$heading" ]; then printf '\n%s\n\n%s\n%s\n' "$heading" "$begin" "$end"; else printf '\n%s\n%s\n' "$begin" "$end"; fi >>"$file"
	fi
	tmp=$(mktemp)
	BEGIN_M=$begin END_M=$end BODY=$body awk '
		$0 == ENVIRON["BEGIN_M"] { print; print ENVIRON["BODY"]; skip = 1; next }
		$0 == ENVIRON["END_M"] { skip = 0 }
		!skip { print }' "$file" >"$tmp"
	cat "$tmp" >"$file"
	rm -f "$tmp"
}
