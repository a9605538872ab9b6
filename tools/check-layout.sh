#!/bin/sh
# check-layout.sh BUILD -- dependencies point from bindings/ to runtime/,
# never back.  Two checks: no file in runtime/ includes a header from
# outside runtime/ (the generated module list aside), and no object built
# from runtime/ needs a symbol that an object built from bindings/ defines.
set -eu
build=${1:-build}
status=0

bad=$(grep -n '#include "' runtime/*.c runtime/*.h |
      grep -v -E '#include "(internal|corio|modules)\.h"' || true)
if [ -n "$bad" ]; then
  echo "check-layout: runtime/ includes a header from outside the core:" >&2
  echo "$bad" >&2
  status=1
fi

need=$(nm -u "$build"/obj/runtime/*.o | awk '{print $2}' | sort -u)
have=$(find "$build/obj/bindings" -name '*.o' -exec nm --defined-only {} + |
       awk 'NF == 3 {print $3}' | sort -u)
cross=$(printf '%s\n%s\n' "$need" "$have" | sort | uniq -d)
if [ -n "$cross" ]; then
  echo "check-layout: runtime/ calls into bindings/:" >&2
  echo "$cross" >&2
  status=1
fi
[ $status -eq 0 ] && echo "check-layout: runtime/ depends on nothing in bindings/"
exit $status
