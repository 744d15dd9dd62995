<?php
// Moodle front page (demo skeleton).
require_once('config.php');
echo "Hello from the demo Moodle\n";
