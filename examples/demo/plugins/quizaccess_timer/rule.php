<?php
defined('MOODLE_INTERNAL') || die();
class quizaccess_timer extends \mod_quiz\local\access_rule_base {}
