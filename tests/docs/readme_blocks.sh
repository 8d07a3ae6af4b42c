# shellcheck shell=bash
# The README's example blocks, run as a reader would paste them. Sourced by
# tests/docs/test_readme_examples.sh and scripts/check-run.
#
# In a block, a line beginning with "#  " (hash, two spaces) is a line the command
# above it prints: "#  stderr: TEXT" a line on stderr, "#  (empty line)" an empty
# stdout line, and a "?" stands for any one character (what depends on the keys or
# the day). A command prints exactly its lines: one with none prints nothing.

# readme_blocks FILE START_REGEX LANG: the ```LANG blocks from the line matching
# START_REGEX to the next "## " heading, concatenated.
readme_blocks() {
    awk -v start="$2" -v fence="\`\`\`$3" '
        !on && $0 ~ start {on = 1; next}
        on && /^## / {exit}
        on && !in_block && $0 == fence {in_block = 1; next}
        on && in_block && /^```/ {in_block = 0; next}
        in_block {print}' "$1"
}

# readme_run_block BLOCK_FILE WORK_DIR [PREAMBLE]: runs the block's commands in one
# bash in WORK_DIR (after PREAMBLE) and compares each command's output with its
# "#  " lines. Prints one line per command (PASS or FAIL, with the difference);
# returns 1 when any differs, or when the block has no command or no output line.
readme_run_block() {
    local block=$1 work=$2 preamble=${3:-} dir n=0 line outputs=0 status=0 i
    local -a cmds=()
    dir=$(mktemp -d)
    while IFS= read -r line || [[ -n $line ]]; do
        if [[ $line == '#  '* ]]; then
            if ((n == 0)); then
                echo "FAIL output line before any command: $line"
                status=1
                continue
            fi
            line=${line#\#  }
            outputs=$((outputs + 1))
            if [[ $line == 'stderr: '* ]]; then
                printf '%s\n' "${line#stderr: }" >>"$dir/err.exp.$n"
            elif [[ $line == '(empty line)' ]]; then
                printf '\n' >>"$dir/out.exp.$n"
            else
                printf '%s\n' "$line" >>"$dir/out.exp.$n"
            fi
        elif [[ $line =~ ^[[:space:]]*(#|$) ]]; then
            continue
        else
            n=$((n + 1))
            cmds[n]=$line
            : >"$dir/out.exp.$n"
            : >"$dir/err.exp.$n"
            if [[ $line == *\\ ]]; then
                echo "FAIL a command continued on the next line is not supported here: $line"
                status=1
            fi
        fi
    done <"$block"
    if ((n == 0 || outputs == 0)); then
        echo "FAIL the block has $n commands and $outputs output lines"
        rm -rf "$dir"
        return 1
    fi
    {
        printf '%s\n' "$preamble"
        for ((i = 1; i <= n; i++)); do
            # The brace on its own line: a trailing comment cannot swallow it.
            printf '{ %s\n} >%q 2>%q\n' "${cmds[i]}" "$dir/out.$i" "$dir/err.$i"
        done
    } >"$dir/script"
    (cd "$work" && bash "$dir/script" </dev/null) >/dev/null 2>&1
    for ((i = 1; i <= n; i++)); do
        local why=""
        if [[ ! -f $dir/out.$i ]]; then
            why="it did not run (an earlier command ended the shell)"
        else
            readme_lines_match "$dir/out.exp.$i" "$dir/out.$i" || why="stdout differs"
            readme_lines_match "$dir/err.exp.$i" "$dir/err.$i" || why="${why:+$why, }stderr differs"
        fi
        if [[ -z $why ]]; then
            echo "PASS ${cmds[i]}"
        else
            status=1
            echo "FAIL ${cmds[i]}: $why"
            [[ -f $dir/out.$i ]] || continue
            sed 's/^/    expected| /' "$dir/out.exp.$i"
            sed 's/^/    printed | /' "$dir/out.$i"
            sed 's/^/    expected stderr| /' "$dir/err.exp.$i"
            sed 's/^/    printed stderr | /' "$dir/err.$i"
        fi
    done
    rm -rf "$dir"
    return "$status"
}

# readme_lines_match EXPECTED_FILE ACTUAL_FILE: same number of lines, each actual
# line matching its expected one, where "?" is any one character.
readme_lines_match() {
    local -a exp act
    local i pattern
    mapfile -t exp <"$1"
    mapfile -t act <"$2"
    ((${#exp[@]} == ${#act[@]})) || return 1
    for ((i = 0; i < ${#exp[@]}; i++)); do
        # Only "?" is a wildcard: every other character is quoted ([[ ]] also
        # knows extglob's "!(...)" and "@(...)").
        pattern=$(printf '%s' "${exp[i]}" | sed 's/[^?[:alnum:]]/\\&/g')
        # shellcheck disable=SC2053  # the right side is a pattern on purpose
        [[ ${act[i]} == $pattern ]] || return 1
    done
}
