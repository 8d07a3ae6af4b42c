#!/usr/bin/env bash
# The core's layering (lib/README.md), checked on the includes:
#   base <- envelope <- bounce,  base <- state,  policy on top of all.
# Every file of lib/src and lib/include/backstop sits in a module folder; a module
# includes public headers only of itself and the modules below it, private headers
# only of its own folder, and nothing of an MTA protocol or of syslog.
# Usage: test_lib_modules.sh LIBDIR
set -u
lib=${1:?usage: test_lib_modules.sh LIBDIR}

declare -A allowed=(
    [base]="base"
    [envelope]="base envelope"
    [bounce]="base envelope bounce"
    [state]="base state"
    [policy]="base envelope bounce state policy"
)

# Prints one line per violation in the tree at $1; returns 1 when there is any.
check_tree() {
    local root=$1 bad=0 file rel module line target dep
    while IFS= read -r -d '' file; do
        rel=${file#"$root"/}
        case $rel in
            src/*/*) module=${rel#src/}; module=${module%%/*} ;;
            include/backstop/*/*) module=${rel#include/backstop/}; module=${module%%/*} ;;
            *) echo "$rel: not in a module folder (src/MODULE/ or include/backstop/MODULE/)"; bad=1; continue ;;
        esac
        if [[ -z ${allowed[$module]+x} ]]; then
            echo "$rel: unknown module '$module' (known: ${!allowed[*]})"; bad=1; continue
        fi
        while IFS= read -r line; do
            target=${line#*\"}; target=${target%%\"*}
            case $target in
                backstop/*/*)
                    dep=${target#backstop/}; dep=${dep%%/*}
                    if [[ " ${allowed[$module]} " != *" $dep "* ]]; then
                        echo "$rel: module $module includes $target (a $dep header; $module may use: ${allowed[$module]})"; bad=1
                    elif [[ ! -f $root/include/$target ]]; then
                        echo "$rel: includes $target, which does not exist"; bad=1
                    fi ;;
                backstop/*)
                    echo "$rel: includes $target outside any module folder"; bad=1 ;;
                */*)
                    echo "$rel: includes $target by a path: private headers come from the module's own folder"; bad=1 ;;
                *)
                    if [[ $rel != src/* || ! -f $root/src/$module/$target ]]; then
                        echo "$rel: includes \"$target\", not a private header of src/$module"; bad=1
                    fi ;;
            esac
        done < <(grep -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$file")
        if grep -qE '^[[:space:]]*#[[:space:]]*include[[:space:]]*<(libmilter/|syslog\.h)' "$file"; then
            echo "$rel: the core includes an MTA protocol or syslog header"; bad=1
        fi
    done < <(find "$root/src" "$root/include" -type f \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' \) -print0 | sort -z)
    return $bad
}

status=0
if ! check_tree "$lib"; then
    echo "FAIL: lib/ breaks its module layering (see lib/README.md)"
    status=1
fi

# The check itself must see a violation: a copy of lib/ in which envelope reaches up
# to policy, and one with a file outside any module folder.
scratch=$(mktemp -d /tmp/backstop-layout.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
cp -r "$lib/src" "$lib/include" "$scratch/"
victim=$(find "$scratch/src/envelope" -name '*.cpp' | sort | head -n 1)
echo '#include "backstop/policy/session.hpp"' >> "$victim"
if check_tree "$scratch" > "$scratch/out"; then
    echo "FAIL: an envelope file including a policy header was not reported"; status=1
elif ! grep -q 'module envelope includes backstop/policy/session.hpp' "$scratch/out"; then
    echo "FAIL: the report does not name the violation:"; cat "$scratch/out"; status=1
fi
sed -i '$d' "$victim"
touch "$scratch/src/loose.cpp"
if check_tree "$scratch" > "$scratch/out"; then
    echo "FAIL: a source file outside any module folder was not reported"; status=1
fi

[[ $status -eq 0 ]] && echo "lib/ layering OK: $(find "$lib/src" "$lib/include" -type f | wc -l) files in ${#allowed[@]} modules"
exit $status
