<?php
// A quiz access rule: a subplugin of mod_quiz, installed under mod/quiz/accessrule/.
defined('MOODLE_INTERNAL') || die();

$plugin->component = 'quizaccess_timer';
$plugin->version   = 2024100900;
$plugin->release   = '0.9';
$plugin->requires  = 2024100100;
$plugin->maturity  = MATURITY_BETA;
