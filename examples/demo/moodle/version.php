<?php
// A tiny synthetic Moodle 4.5 skeleton for the mcb demo: the files mcb reads, little else.
defined('MOODLE_INTERNAL') || die();

$version  = 2024100701.00;              // 20241007      = branching date YYYYMMDD - do not modify!
$release  = '4.5.1 (Build: 20241209)';  // Human-friendly version name
$branch   = '405';                      // This version's branch.
$maturity = MATURITY_STABLE;            // This version's maturity level.
