<?php
// Block "Hello": says hello, with a greeting from local_greet.
defined('MOODLE_INTERNAL') || die();

$plugin->component = 'block_hello';
$plugin->version   = 2024111800;
$plugin->release   = '1.2.0';
$plugin->requires  = 2024100100;         // Moodle 4.5.
$plugin->supported = [404, 405];
$plugin->maturity  = MATURITY_STABLE;
$plugin->dependencies = [
    'local_greet' => 2024090100,
];
