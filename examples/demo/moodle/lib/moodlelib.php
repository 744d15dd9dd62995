<?php
// Core library (demo skeleton).
defined('MOODLE_INTERNAL') || die();
function get_string($identifier, $component = '') { return "[[$identifier]]"; }
