<?php
defined('MOODLE_INTERNAL') || die();
class block_hello extends block_base {
    public function init() { $this->title = get_string('pluginname', 'block_hello'); }
    public function get_content() { return (object) ['text' => \local_greet\greeting::text()]; }
}
