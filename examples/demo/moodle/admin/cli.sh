#!/bin/sh
# Demo stand-in for admin/cli scripts: shows executables keep their mode.
echo "php admin/cli/upgrade.php --non-interactive"
